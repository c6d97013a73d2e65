import type * as http from "node:http";
import { EtcdError } from "../server/errors.js";
import type { EtcdServer } from "../server/member.js";
import { V2Code, V2Error } from "../v2store/errors.js";
import { isCreated, type V2Event } from "../v2store/event.js";
import { eventJson, keysPath, parseKeysRequest, raftHeaders, readForm, writeV2Error } from "./v2-keys-http.js";
import { membersPath, V2Members } from "./v2-members.js";
import { v2Stats } from "./v2-stats.js";

/** Bodies of v2 requests beyond this are refused (a form, not a document). */
const formBytesMax = 10 * 1024 * 1024;

/**
 * The v2 API on the client port's HTTP side (--enable-v2): `/v2/keys`,
 * `/v2/members`, `/v2/machines` and `/v2/stats/*`, answered as etcd 3.4 does.
 */
export class V2Http {
  private readonly watches = new Set<() => void>();
  private readonly members: V2Members;

  constructor(private readonly server: EtcdServer) {
    this.members = new V2Members(server);
  }

  /** Handles `request` if its path is a v2 one; false otherwise. */
  handle(request: http.IncomingMessage, response: http.ServerResponse, path: string): boolean {
    if (path === keysPath || path.startsWith(`${keysPath}/`)) {
      let key: string;
      try {
        key = decodeURIComponent(path.slice(keysPath.length));
      } catch {
        // A path Go cannot unescape is refused by its HTTP server before any handler.
        response.writeHead(400, { "Content-Type": "text/plain; charset=utf-8", Connection: "close" });
        response.end("400 Bad Request");
        return true;
      }
      this.keys(request, response, key);
      return true;
    }
    if (path === membersPath || path.startsWith(`${membersPath}/`)) {
      this.members.handle(request, response, path);
      return true;
    }
    return v2Stats(this.server, request, response, path);
  }

  /** Ends every waiting watch (the server is closing). */
  close(): void {
    for (const end of [...this.watches]) end();
  }

  private clusterHeader(): Record<string, string> {
    return { "X-Etcd-Cluster-Id": this.server.clusterId.toString(16) };
  }

  private keys(request: http.IncomingMessage, response: http.ServerResponse, key: string): void {
    const method = request.method ?? "GET";
    if (!["HEAD", "GET", "PUT", "POST", "DELETE"].includes(method)) return methodNotAllowed(response, "HEAD,GET,PUT,POST,DELETE");
    const chunks: Buffer[] = [];
    let length = 0;
    request.on("data", (chunk: Buffer) => {
      length += chunk.length;
      if (length <= formBytesMax) chunks.push(chunk);
    });
    request.on("end", () => {
      let parsed: ReturnType<typeof parseKeysRequest>;
      try {
        parsed = parseKeysRequest(method, key, readForm(request, Buffer.concat(chunks).toString("utf8")), Date.now());
      } catch (error) {
        if (error instanceof V2Error) return writeV2Error(response, error, this.clusterHeader());
        throw error;
      }
      void this.serve(parsed.request, parsed.noValueOnSuccess, response);
    });
  }

  private async serve(request: ReturnType<typeof parseKeysRequest>["request"], noValueOnSuccess: boolean, response: http.ServerResponse): Promise<void> {
    const store = this.server.v2.store;
    try {
      if (request.Method === "GET" || request.Method === "HEAD") {
        if (request.Wait) return await this.watch(request, response);
        return this.writeEvent(response, store.get(request.Path, request.Recursive, request.Sorted), noValueOnSuccess);
      }
      const outcome = await this.server.proposeV2(request);
      if (outcome.error !== undefined) throw outcome.error;
      this.writeEvent(response, outcome.event!, noValueOnSuccess);
    } catch (error) {
      if (error instanceof V2Error) return writeV2Error(response, error, this.clusterHeader());
      const message = error instanceof EtcdError || error instanceof Error ? error.message : String(error);
      writeV2Error(response, new V2Error(V2Code.RaftInternal, message, 0), this.clusterHeader());
    }
  }

  private writeEvent(response: http.ServerResponse, event: V2Event, noValueOnSuccess: boolean): void {
    const body = eventJson(event, noValueOnSuccess);
    response.writeHead(isCreated(event) ? 201 : 200, {
      "Content-Length": Buffer.byteLength(body),
      ...this.clusterHeader(),
      "Content-Type": "application/json",
      "X-Etcd-Index": String(event.etcdIndex),
      ...raftHeaders(this.server),
    });
    response.end(body);
  }

  /** A long poll: headers at once (X-Etcd-Index is the store index when the watch began), then the event, or every event when streaming. */
  private async watch(request: ReturnType<typeof parseKeysRequest>["request"], response: http.ServerResponse): Promise<void> {
    const watcher = this.server.v2.store.watch(request.Path, request.Recursive, request.Stream, Number(request.Since));
    const end = () => watcher.remove();
    this.watches.add(end);
    response.on("close", end);
    response.writeHead(200, { ...this.clusterHeader(), "Content-Type": "application/json", "X-Etcd-Index": String(watcher.startIndex), ...raftHeaders(this.server) });
    response.flushHeaders();
    try {
      for (;;) {
        const event = await watcher.next();
        if (event === undefined || response.destroyed) break;
        response.write(eventJson(event));
        if (!request.Stream) break;
      }
    } finally {
      watcher.remove();
      this.watches.delete(end);
      if (!response.destroyed) response.end();
    }
  }
}

/** Go's path cleaning of a request path, a trailing slash kept, as its ServeMux does before routing. */
export function goCleanPath(path: string): string {
  const parts: string[] = [];
  for (const part of path.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  const cleaned = `/${parts.join("/")}`;
  return path.endsWith("/") && cleaned !== "/" ? `${cleaned}/` : cleaned;
}

/** Go's ServeMux answer to an uncleaned path: 301 to the cleaned one, query kept, with Go's little body for GET and HEAD. */
export function redirectToClean(request: http.IncomingMessage, response: http.ServerResponse, cleaned: string, headers: Record<string, string>): void {
  const query = (request.url ?? "").includes("?") ? `?${(request.url ?? "").split("?").slice(1).join("?")}` : "";
  const location = `${cleaned}${query}`;
  const method = request.method ?? "GET";
  if (method !== "GET" && method !== "HEAD") {
    response.writeHead(301, { ...headers, Location: location, "Content-Length": 0 });
    return void response.end();
  }
  const body = `<a href="${location.replaceAll("&", "&amp;").replaceAll('"', "&#34;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll("'", "&#39;")}">Moved Permanently</a>.\n\n`;
  response.writeHead(301, { ...headers, "Content-Type": "text/html; charset=utf-8", Location: location, "Content-Length": Buffer.byteLength(body) });
  response.end(body);
}

/** Go's http.Error for a method a handler does not take, with the Allow header. */
export function methodNotAllowed(response: http.ServerResponse, allow: string): void {
  response.writeHead(405, { Allow: allow, "Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff", "Content-Length": 19 });
  response.end("Method Not Allowed\n");
}

/** Go's http.NotFound: what etcd answers on paths it does not serve (all of /v2 without --enable-v2). */
export function goNotFound(response: http.ServerResponse, headers: Record<string, string> = {}): void {
  response.writeHead(404, { ...headers, "Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff", "Content-Length": 19 });
  response.end("404 page not found\n");
}
