import type * as http from "node:http";
import * as errors from "../server/errors.js";
import type { EtcdServer } from "../server/member.js";

/** The path of the v2 members API. */
export const membersPath = "/v2/members";

/** Member bodies beyond this are refused. */
const bodyBytesMax = 64 * 1024;

type MemberView = { id: bigint; name: string; peerUrls: string[]; clientUrls: string[] };

function memberJson(member: MemberView) {
  return { id: member.id.toString(16), name: member.name, peerURLs: member.peerUrls, clientURLs: member.clientUrls };
}

/**
 * etcd's v2 members API: GET lists the members (or the leader), POST adds a
 * member from `{"peerURLs": [...]}`, DELETE removes `/v2/members/<id>`, PUT
 * changes its peer URLs; answers and errors as etcd writes them.
 */
export class V2Members {
  constructor(private readonly server: EtcdServer) {}

  handle(request: http.IncomingMessage, response: http.ServerResponse, path: string): void {
    const method = request.method ?? "GET";
    const cluster = { "X-Etcd-Cluster-Id": this.server.clusterId.toString(16) };
    if (!["GET", "POST", "DELETE", "PUT"].includes(method)) {
      response.writeHead(405, { Allow: "GET,POST,DELETE,PUT", "Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff", "Content-Length": 19 });
      return void response.end("Method Not Allowed\n");
    }
    const rest = path.slice(membersPath.length).replace(/^\//, "");
    const send = (status: number, body: unknown, newline = false) => {
      const text = `${JSON.stringify(body)}${newline ? "\n" : ""}`;
      response.writeHead(status, { "Content-Type": "application/json", ...cluster, "Content-Length": Buffer.byteLength(text) });
      response.end(text);
    };
    if (method === "GET") return this.get(rest, send);
    if (method !== "POST" && rest === "") {
      response.writeHead(405, { "Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff", ...cluster, "Content-Length": 19 });
      return void response.end("Method Not Allowed\n");
    }
    const id = /^[0-9a-fA-F]{1,16}$/.test(rest) ? BigInt(`0x${rest}`) : undefined;
    if (method === "DELETE") {
      if (id === undefined) return send(404, { message: `No such member: ${rest}` });
      return void this.settle(this.server.cluster.remove(id), id, send, () => {
        response.writeHead(204, cluster);
        response.end();
      });
    }
    this.readJson(request, send, (peerUrls) => {
      if (method === "POST") {
        return void this.settle(this.server.cluster.add(peerUrls, false), 0n, send, (member) => send(201, memberJson(member as MemberView), true));
      }
      if (id === undefined) return send(404, { message: `No such member: ${rest}` });
      this.settle(this.server.cluster.update(id, peerUrls), id, send, () => {
        response.writeHead(204, cluster);
        response.end();
      });
    });
  }

  private get(rest: string, send: (status: number, body: unknown, newline?: boolean) => void): void {
    if (rest === "") return send(200, { members: this.server.membership.list().map(memberJson) }, true);
    if (rest !== "leader") return send(404, { message: "Not found" });
    const leader = this.server.membership.get(this.server.leaderId);
    if (leader === undefined) return send(503, { message: "During election" });
    send(200, memberJson(leader), true);
  }

  /** Reads `{"peerURLs": [...]}` from a JSON body, with etcd's refusals. */
  private readJson(request: http.IncomingMessage, send: (status: number, body: unknown) => void, done: (peerUrls: string[]) => void): void {
    const contentType = String(request.headers["content-type"] ?? "");
    const semicolon = contentType.indexOf(";");
    const type = semicolon === -1 ? contentType : contentType.slice(0, semicolon).trim().toLowerCase();
    const chunks: Buffer[] = [];
    let length = 0;
    request.on("data", (chunk: Buffer) => {
      length += chunk.length;
      if (length <= bodyBytesMax) chunks.push(chunk);
    });
    request.on("end", () => {
      if (type !== "application/json") return send(415, { message: `Bad Content-Type ${type}, accept application/json` });
      let urls: unknown;
      try {
        urls = (JSON.parse(Buffer.concat(chunks).toString("utf8")) as { peerURLs?: unknown }).peerURLs;
      } catch (error) {
        return send(400, { message: (error as Error).message });
      }
      const list = Array.isArray(urls) ? urls.map(String) : [];
      for (const url of list) {
        const problem = urlProblem(url);
        if (problem !== undefined) return send(400, { message: problem });
      }
      done(list);
    });
  }

  /** Answers a membership change: etcd's statuses and words for its refusals. */
  private settle(change: Promise<unknown>, id: bigint, send: (status: number, body: unknown) => void, ok: (result: unknown) => void): Promise<void> {
    return change.then(ok, (error: unknown) => {
      if (error === errors.ErrPeerUrlExists) return send(409, { message: "membership: peerURL exists" });
      if (error === errors.ErrMemberExists) return send(409, { message: "membership: ID exists" });
      if (error === errors.ErrMemberNotFound) return send(404, { message: `No such member: ${id.toString(16)}` });
      send(500, { message: error instanceof Error ? error.message : String(error) });
    });
  }
}

/** Why etcd's types.NewURLs refuses a URL, or undefined. */
function urlProblem(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `URL scheme must be http, https, unix, or unixs: ${text}`;
  }
  if (!["http:", "https:", "unix:", "unixs:"].includes(url.protocol)) return `URL scheme must be http, https, unix, or unixs: ${text}`;
  if (url.port === "" && !url.protocol.startsWith("unix")) return `URL address does not have the form "host:port": ${text}`;
  if (url.pathname !== "/" && url.pathname !== "") return `URL must not contain a path: ${text}`;
  return undefined;
}
