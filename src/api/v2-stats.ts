import type * as http from "node:http";
import type { EtcdServer } from "../server/member.js";
import { rfc3339Nano } from "../v2store/node.js";

/** When this process started serving, for /v2/stats/self. */
const startedAtMs = Date.now();

/** The store counters /v2/stats/store reports, in etcd's order. */
const storeStatNames = [
  "getsSuccess",
  "getsFail",
  "setsSuccess",
  "setsFail",
  "deleteSuccess",
  "deleteFail",
  "updateSuccess",
  "updateFail",
  "createSuccess",
  "createFail",
  "compareAndSwapSuccess",
  "compareAndSwapFail",
  "compareAndDeleteSuccess",
  "compareAndDeleteFail",
  "expireCount",
];

/** A stats answer: JSON without a trailing newline, as etcd writes it. */
function sendJson(_server: EtcdServer, response: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
  response.end(text);
}

/** Go's time.Duration String of a span in milliseconds (e.g. "1m2.5s"). */
function goDuration(ms: number): string {
  const seconds = ms / 1000;
  if (seconds < 60) return `${Number(seconds.toFixed(9))}s`;
  const minutes = Math.floor(seconds / 60);
  const rest = Number((seconds - minutes * 60).toFixed(9));
  return minutes < 60 ? `${minutes}m${rest}s` : `${Math.floor(minutes / 60)}h${minutes % 60}m${rest}s`;
}

/**
 * `/v2/machines` and `/v2/stats/self|store|leader`; false for any other path.
 */
export function v2Stats(server: EtcdServer, request: http.IncomingMessage, response: http.ServerResponse, path: string): boolean {
  const members = server.membership.list();
  const allowed = path === "/v2/machines" ? ["GET", "HEAD"] : ["GET"];
  const known = ["/v2/machines", "/v2/stats/self", "/v2/stats/store", "/v2/stats/leader"].includes(path);
  if (known && !allowed.includes(request.method ?? "GET")) {
    response.writeHead(405, { Allow: allowed.join(","), "Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff", "Content-Length": 19 });
    response.end("Method Not Allowed\n");
    return true;
  }
  switch (path) {
    case "/v2/machines":
      response.writeHead(200, { "Content-Type": "text/plain; charset=utf-8" });
      response.end(members.flatMap((member) => member.clientUrls).join(", "));
      return true;
    case "/v2/stats/self":
      sendJson(server, response, 200, {
        name: server.config.name,
        id: server.memberId.toString(16),
        state: server.leaderId === server.memberId ? "StateLeader" : "StateFollower",
        startTime: rfc3339Nano(startedAtMs),
        leaderInfo: { leader: server.leaderId.toString(16), uptime: goDuration(Date.now() - startedAtMs), startTime: rfc3339Nano(startedAtMs) },
        recvAppendRequestCnt: 0,
        sendAppendRequestCnt: 0,
      });
      return true;
    case "/v2/stats/store": {
      const stats = server.v2.store.stats;
      const body: Record<string, number> = {};
      for (const name of storeStatNames) body[name] = stats.get(name) ?? 0;
      body["watchers"] = server.v2.store.hub.count;
      sendJson(server, response, 200, body);
      return true;
    }
    case "/v2/stats/leader":
      if (server.leaderId !== server.memberId) {
        sendJson(server, response, 403, { message: "not current leader" });
        return true;
      }
      sendJson(server, response, 200, { leader: server.memberId.toString(16), followers: followerStats(server) });
      return true;
    default:
      return false;
  }
}

/** Each follower's entry in /v2/stats/leader, with what the peer transport measured. */
function followerStats(server: EtcdServer): Record<string, unknown> {
  const followers: Record<string, unknown> = {};
  for (const member of server.membership.list()) {
    if (member.id === server.memberId) continue;
    const latency = server.peerLatency(member.id);
    followers[member.id.toString(16)] = {
      latency: { current: latency.currentMs, average: latency.averageMs, standardDeviation: latency.deviationMs, minimum: latency.minimumMs, maximum: latency.maximumMs },
      counts: { fail: latency.failures, success: latency.successes },
    };
  }
  return followers;
}
