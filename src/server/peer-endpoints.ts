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

/** Asks the leader, at one of its peer URLs, to do `operation` for `id`; resolves with its JSON result or throws the etcd error it failed with. */
export function callLeader(leaderUrls: readonly string[], operation: string, id: bigint, timeoutMs: number, tls: PeerTlsOptions | undefined): Promise<unknown> {
  const url = leaderUrls[0];
  if (url === undefined) return Promise.reject(errors.ErrNoLeader);
  return new Promise((resolve, reject) => {
    const session = connectPeer(dialUrl(url), tls);
    const fail = (): void => {
      clearTimeout(timer);
      session.destroy();
      reject(errors.ErrTimeout);
    };
    const timer = setTimeout(fail, timeoutMs);
    session.on("error", fail);
    const request = session.request({ ":method": "POST", ":path": `/${operation}/${id.toString(16)}` });
    request.end();
    let status = 0;
    let body = "";
    request.setEncoding("utf8");
    request.on("response", (responseHeaders) => (status = Number(responseHeaders[":status"])));
    request.on("data", (chunk: string) => (body += chunk));
    request.on("error", fail);
    request.on("end", () => {
      clearTimeout(timer);
      session.close();
      try {
        const parsed = JSON.parse(body) as { code: GrpcCode; message: string };
        if (status === 200) resolve(parsed);
        else reject(new EtcdError(parsed.code, parsed.message));
      } catch {
        reject(errors.ErrTimeout);
      }
    });
  });
}

export interface RemoteCluster {
  clusterId: bigint;
  members: Member[];
}

/** Asks one peer URL for the cluster's members. */
function fetchMembers(url: string, timeoutMs: number, tls: PeerTlsOptions | undefined): Promise<RemoteCluster> {
  return new Promise((resolve, reject) => {
    const session = connectPeer(url, tls);
    const timer = setTimeout(() => {
      session.destroy();
      reject(new Error(`no answer from ${url} within ${timeoutMs} ms`));
    }, timeoutMs);
    session.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    const request = session.request({ ":method": "GET", ":path": membersPath });
    let body = "";
    let clusterId: bigint | undefined;
    request.setEncoding("utf8");
    request.on("response", (responseHeaders) => {
      const header = responseHeaders[clusterIdHeader];
      if (responseHeaders[":status"] === 200 && typeof header === "string") clusterId = BigInt(`0x${header}`);
    });
    request.on("data", (chunk: string) => (body += chunk));
    request.on("end", () => {
      clearTimeout(timer);
      session.close();
      if (clusterId === undefined) return reject(new Error(`${url} did not list its cluster's members`));
      try {
        resolve({ clusterId, members: (JSON.parse(body) as MemberJson[]).map(fromJson) });
      } catch (error) {
        reject(error as Error);
      }
    });
    request.on("error", (error) => {
      clearTimeout(timer);
      session.destroy();
      reject(error);
    });
  });
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
