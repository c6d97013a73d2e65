import http2 from "node:http2";
import * as errors from "./errors.js";
import { EtcdError, GrpcCode } from "./errors.js";
import type { Member } from "./membership.js";
import { connectPeer, type PeerTlsOptions } from "../transport/index.js";

/** Over h2c, localhost is dialled as 127.0.0.1; over TLS the name written in the URL is what the certificate is checked against. */
const dialUrl = (url: string): string => (url.startsWith("http:") ? url.replace("//localhost:", "//127.0.0.1:") : url);

/**
 * The member's own endpoints on the peer port, beside the raft streams:
 * `GET /members` lists the cluster as this member knows it (a joining member
 * learns its id and the cluster's from it), with the cluster id in a header.
 */
export const membersPath = "/members";
export const clusterIdHeader = "x-etcd-cluster-id";

interface MemberJson {
  id: string;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

function toJson(member: Member): MemberJson {
  return { id: member.id.toString(16), name: member.name, peerURLs: member.peerUrls, clientURLs: member.clientUrls, isLearner: member.isLearner };
}

function fromJson(json: MemberJson): Member {
  return { id: BigInt(`0x${json.id}`), name: json.name, peerUrls: json.peerURLs, clientUrls: json.clientURLs, isLearner: json.isLearner };
}

export interface PeerEndpointHandlers {
  clusterId: bigint;
  members(): Member[];
  /**
   * Operations only the leader can do, which followers forward to it:
   * `POST /<name>/<hex id>` answers 200 with the operation's JSON result, or
   * 409 with the etcd error (gRPC code and message) it failed with.
   */
  leaderOperations: Record<string, (id: bigint) => Promise<unknown>>;
}

/** Serves `GET /members` and the leader's operations; false for any other request. */
export function servePeerEndpoint(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, handlers: PeerEndpointHandlers): boolean {
  const path = headers[":path"] ?? "";
  const json = { "content-type": "application/json", [clusterIdHeader]: handlers.clusterId.toString(16) };
  if (headers[":method"] === "GET" && path === membersPath) {
    stream.respond({ ":status": 200, ...json });
    stream.end(JSON.stringify(handlers.members().map(toJson)));
    return true;
  }
  const operation = /^\/([a-z-]+)\/([0-9a-f]{1,16})$/.exec(path);
  const handler = operation === null ? undefined : handlers.leaderOperations[operation[1]!];
  if (headers[":method"] !== "POST" || handler === undefined) return false;
  stream.resume();
  handler(BigInt(`0x${operation![2]}`)).then(
    (result) => {
      stream.respond({ ":status": 200, ...json });
      stream.end(JSON.stringify(result ?? {}));
    },
    (error: unknown) => {
      const refusal = error instanceof EtcdError ? error : new EtcdError(GrpcCode.Unknown, String(error));
      stream.respond({ ":status": 409, ...json });
      stream.end(JSON.stringify({ code: refusal.grpcCode, message: refusal.message }));
    },
  );
  return true;
}

/** One request to a peer's own endpoints: its status, the cluster id header and the body; rejects on a connection error or after `timeoutMs`. */
function requestPeer(url: string, tls: PeerTlsOptions | undefined, method: "GET" | "POST", path: string, timeoutMs: number): Promise<{ status: number; clusterId: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const session = connectPeer(url, tls);
    const fail = (error: Error): void => {
      clearTimeout(timer);
      session.destroy();
      reject(error);
    };
    const timer = setTimeout(() => fail(new Error(`no answer from ${url} within ${timeoutMs} ms`)), timeoutMs);
    session.on("error", fail);
    const request = session.request({ ":method": method, ":path": path });
    request.end();
    let status = 0;
    let clusterId: string | undefined;
    let body = "";
    request.setEncoding("utf8");
    request.on("response", (headers) => {
      status = Number(headers[":status"]);
      const header = headers[clusterIdHeader];
      if (typeof header === "string") clusterId = header;
    });
    request.on("data", (chunk: string) => (body += chunk));
    request.on("error", fail);
    request.on("end", () => {
      clearTimeout(timer);
      session.close();
      resolve({ status, clusterId, body });
    });
  });
}

/** Asks the leader, at one of its peer URLs, to do `operation` for `id`; resolves with its JSON result or throws the etcd error it failed with. */
export async function callLeader(leaderUrls: readonly string[], operation: string, id: bigint, timeoutMs: number, tls: PeerTlsOptions | undefined): Promise<unknown> {
  const url = leaderUrls[0];
  if (url === undefined) throw errors.ErrNoLeader;
  let answer;
  let parsed: { code: GrpcCode; message: string };
  try {
    answer = await requestPeer(dialUrl(url), tls, "POST", `/${operation}/${id.toString(16)}`, timeoutMs);
    parsed = JSON.parse(answer.body) as typeof parsed;
  } catch {
    throw errors.ErrTimeout;
  }
  if (answer.status === 200) return parsed;
  throw new EtcdError(parsed.code, parsed.message);
}

export interface RemoteCluster {
  clusterId: bigint;
  members: Member[];
}

/** Asks one peer URL for the cluster's members. */
async function fetchMembers(url: string, timeoutMs: number, tls: PeerTlsOptions | undefined): Promise<RemoteCluster> {
  const answer = await requestPeer(url, tls, "GET", membersPath, timeoutMs);
  if (answer.status !== 200 || answer.clusterId === undefined) throw new Error(`${url} did not list its cluster's members`);
  return { clusterId: BigInt(`0x${answer.clusterId}`), members: (JSON.parse(answer.body) as MemberJson[]).map(fromJson) };
}

/** The cluster as the first of `urls` that answers describes it. */
export async function fetchRemoteCluster(urls: readonly string[], timeoutMs: number, tls: PeerTlsOptions | undefined): Promise<RemoteCluster> {
  const failures: string[] = [];
  for (const url of urls) {
    try {
      return await fetchMembers(dialUrl(url), timeoutMs, tls);
    } catch (error) {
      failures.push(`${url}: ${(error as Error).message}`);
    }
  }
  throw new Error(`could not retrieve cluster information from the given URLs (${failures.join("; ")})`);
}
