import { EventEmitter } from "node:events";
import type * as http from "node:http";
import { fromJson, toJson, type DescMethod, type DescService, type JsonValue } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { Auth, Cluster, KV, Lease, Maintenance } from "../gen/etcdserverpb/rpc_pb.js";
import { Election, LeaderResponseSchema } from "../gen/v3electionpb/v3election_pb.js";
import { Lock } from "../gen/v3lockpb/v3lock_pb.js";
import type { Dashboard } from "../dashboard/serve.js";
import type { EtcdMetrics } from "../metrics/etcd-metrics.js";
import { AlarmType } from "../server/alarms.js";
import { GrpcCode } from "../server/errors.js";
import { clusterVersion, etcdVersion, type EtcdServer } from "../server/member.js";
import type { ElectionService } from "./election.js";
import { parseJsonExactly } from "./exact-json.js";
import { goCleanPath, goNotFound, redirectToClean, V2Http } from "./v2-http.js";

/**
 * The HTTP/1.1 side of the client port, as etcd serves it: `/health`,
 * `/version`, and the `/v3` JSON gateway, where a POST of a request's proto3
 * JSON to the method's path answers with the response's JSON (proto field
 * names, 64-bit integers as strings, bytes in base64). `/v3beta` is the same.
 */
const gatewayPaths: ReadonlyArray<[string, DescService, string]> = [
  ["kv/range", KV, "range"],
  ["kv/put", KV, "put"],
  ["kv/deleterange", KV, "deleteRange"],
  ["kv/txn", KV, "txn"],
  ["kv/compaction", KV, "compact"],
  ["lease/grant", Lease, "leaseGrant"],
  ["lease/revoke", Lease, "leaseRevoke"],
  ["kv/lease/revoke", Lease, "leaseRevoke"],
  ["lease/timetolive", Lease, "leaseTimeToLive"],
  ["kv/lease/timetolive", Lease, "leaseTimeToLive"],
  ["lease/leases", Lease, "leaseLeases"],
  ["kv/lease/leases", Lease, "leaseLeases"],
  ["cluster/member/list", Cluster, "memberList"],
  ["maintenance/alarm", Maintenance, "alarm"],
  ["maintenance/status", Maintenance, "status"],
  ["auth/enable", Auth, "authEnable"],
  ["auth/disable", Auth, "authDisable"],
  ["auth/status", Auth, "authStatus"],
  ["auth/authenticate", Auth, "authenticate"],
  ["auth/user/add", Auth, "userAdd"],
  ["auth/user/get", Auth, "userGet"],
  ["auth/user/list", Auth, "userList"],
  ["auth/user/delete", Auth, "userDelete"],
  ["auth/user/changepw", Auth, "userChangePassword"],
  ["auth/user/grant", Auth, "userGrantRole"],
  ["auth/user/revoke", Auth, "userRevokeRole"],
  ["auth/role/add", Auth, "roleAdd"],
  ["auth/role/get", Auth, "roleGet"],
  ["auth/role/list", Auth, "roleList"],
  ["auth/role/delete", Auth, "roleDelete"],
  ["auth/role/grant", Auth, "roleGrantPermission"],
  ["auth/role/revoke", Auth, "roleRevokePermission"],
  ["lock/lock", Lock, "lock"],
  ["lock/unlock", Lock, "unlock"],
  ["election/campaign", Election, "campaign"],
  ["election/proclaim", Election, "proclaim"],
  ["election/leader", Election, "leader"],
  ["election/resign", Election, "resign"],
];

/** The one server-streaming call of the gateway: its answers are JSON lines, `{"result": …}` each, as grpc-gateway streams them. */
const observePath = "election/observe";

/** grpc-gateway's HTTP status for each gRPC code. */
const httpStatusOf: Record<number, number> = {
  [GrpcCode.Canceled]: 408,
  [GrpcCode.Unknown]: 500,
  [GrpcCode.InvalidArgument]: 400,
  [GrpcCode.DeadlineExceeded]: 504,
  [GrpcCode.NotFound]: 404,
  [GrpcCode.AlreadyExists]: 409,
  [GrpcCode.PermissionDenied]: 403,
  [GrpcCode.ResourceExhausted]: 429,
  [GrpcCode.FailedPrecondition]: 412,
  [GrpcCode.Aborted]: 409,
  [GrpcCode.OutOfRange]: 400,
  [GrpcCode.Unimplemented]: 501,
  [GrpcCode.Internal]: 500,
  [GrpcCode.Unavailable]: 503,
  [GrpcCode.DataLoss]: 500,
  [GrpcCode.Unauthenticated]: 401,
};

/** Limits of the gateway, kept in one place. */
const gatewayLimits = {
  /** Request bodies beyond --max-request-bytes by this much are refused unread. */
  overheadBytes: 512 * 1024,
} as const;

interface Route {
  method: DescMethod;
  handler: grpc.handleUnaryCall<unknown, unknown>;
}

const observeMethod = Election.methods.find((method) => method.localName === "observe")!;

export class HttpGateway {
  private readonly routes = new Map<string, Route>();
  private readonly closing = new AbortController();
  /** The v2 API, with --enable-v2. */
  private readonly v2: V2Http | undefined;

  /** `implementations` holds the services whose gateway paths are served; none leaves only /health and /version. */
  constructor(
    private readonly member: EtcdServer,
    implementations: ReadonlyMap<DescService, grpc.UntypedServiceImplementation>,
    private readonly metrics?: EtcdMetrics,
    private readonly dashboard?: Dashboard,
    private readonly election?: ElectionService,
  ) {
    if (member.config.enableV2) this.v2 = new V2Http(member);
    for (const [path, service, localName] of gatewayPaths) {
      const method = service.methods.find((candidate) => candidate.localName === localName);
      const implementation = implementations.get(service);
      if (implementation === undefined) continue;
      const handler = implementation[localName] as grpc.handleUnaryCall<unknown, unknown> | undefined;
      if (method === undefined || handler === undefined) throw new Error(`gateway path ${path} has no ${service.name}.${localName}`);
      this.routes.set(`/v3/${path}`, { method, handler });
      this.routes.set(`/v3beta/${path}`, { method, handler });
    }
  }

  handle(request: http.IncomingMessage, response: http.ServerResponse): void {
    const path = (request.url ?? "/").split("?")[0]!;
    this.allowOrigin(request, response);
    if (request.method === "OPTIONS") return send(response, 200, "text/plain; charset=utf-8", "");
    if (path === "/health") return this.health(response);
    if (path === "/metrics" && this.metrics !== undefined) return this.exposeMetrics(response);
    if (this.dashboard?.serves(path) === true && request.method === "GET") return this.dashboard.handle(path, response);
    if (path === "/version") return send(response, 200, "text/plain; charset=utf-8", JSON.stringify({ etcdserver: etcdVersion, etcdcluster: clusterVersion }));
    if (path === "/v2" || path.startsWith("/v2/")) {
      const cleaned = goCleanPath(path);
      if (this.v2 !== undefined && cleaned !== path) return redirectToClean(request, response, cleaned, {});
      if (this.v2?.handle(request, response, path) === true) return;
      return goNotFound(response);
    }
    if (this.election !== undefined && (path === `/v3/${observePath}` || path === `/v3beta/${observePath}`)) return this.observe(request, response, this.election);
    const route = this.routes.get(path);
    if (route === undefined) return send(response, 404, "text/plain; charset=utf-8", "Not Found\n");
    if (request.method !== "POST") return send(response, 405, "text/plain; charset=utf-8", "Method Not Allowed\n");
    this.readBody(request, (body) => {
      if (body === undefined) return sendError(response, GrpcCode.ResourceExhausted, "etcdserver: request is too large");
      this.call(route, body, request, response);
    });
  }

  /** What a `--listen-metrics-urls` listener serves: /metrics and /health, nothing else. */
  handleMetricsOnly(request: http.IncomingMessage, response: http.ServerResponse): void {
    const path = (request.url ?? "/").split("?")[0]!;
    this.allowOrigin(request, response);
    if (path === "/health") return this.health(response);
    if (path === "/metrics" && this.metrics !== undefined) return this.exposeMetrics(response);
    send(response, 404, "text/plain; charset=utf-8", "404 page not found\n");
  }

  /** etcd's --cors: the CORS headers, for any origin with `*` (the default), else for the origins listed. */
  private allowOrigin(request: http.IncomingMessage, response: http.ServerResponse): void {
    const allowed = this.member.config.cors;
    const origin = request.headers.origin;
    const allowOrigin = allowed.includes("*") ? "*" : origin !== undefined && allowed.includes(origin) ? origin : undefined;
    if (allowOrigin === undefined) return;
    response.setHeader("Access-Control-Allow-Headers", "accept, content-type, authorization");
    response.setHeader("Access-Control-Allow-Methods", "POST, GET, OPTIONS, PUT, DELETE");
    response.setHeader("Access-Control-Allow-Origin", allowOrigin);
  }

  private exposeMetrics(response: http.ServerResponse): void {
    const metrics = this.metrics!;
    metrics.exposition().then(
      (text) => send(response, 200, metrics.contentType, text),
      (error: unknown) => send(response, 500, "text/plain; charset=utf-8", `${String(error)}\n`),
    );
  }

  /** Election.Observe: one JSON line per leader change, until the client goes away or the server closes. */
  private observe(request: http.IncomingMessage, response: http.ServerResponse, election: ElectionService): void {
    if (request.method === "OPTIONS") return send(response, 200, "text/plain; charset=utf-8", "");
    if (request.method !== "POST") return send(response, 405, "text/plain; charset=utf-8", "Method Not Allowed\n");
    this.readBody(request, (body) => {
      if (body === undefined) return sendError(response, GrpcCode.ResourceExhausted, "etcdserver: request is too large");
      let message: ReturnType<typeof parseBody>;
      try {
        message = parseBody(observeMethod, body);
      } catch (error) {
        return sendError(response, GrpcCode.InvalidArgument, (error as Error).message);
      }
      const controller = new AbortController();
      response.on("close", () => controller.abort());
      // As grpc-gateway does, the headers go with the first answer.
      const start = () => {
        if (!response.headersSent) response.writeHead(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked" });
      };
      const sink = {
        send: (leader: never) =>
          new Promise<void>((resolve) => {
            if (response.destroyed) return resolve();
            start();
            const line = JSON.stringify({ result: toJson(LeaderResponseSchema, leader, { useProtoFieldName: true }) });
            response.write(`${line}\n`, () => resolve());
          }),
      };
      void election.observe(message as never, AbortSignal.any([controller.signal, this.closing.signal]), sink).then(() => {
        if (response.destroyed) return;
        start();
        response.end();
      });
    });
  }

  /** Ends every streaming answer (Observe) when the server closes. */
  close(): void {
    this.closing.abort();
    this.v2?.close();
  }

  /** etcd 3.4: healthy when a linearizable read succeeds and no alarm is raised. */
  private health(response: http.ServerResponse): void {
    const alarms = this.member.alarms.list();
    const reply = (healthy: boolean) => {
      this.metrics?.healthChecked(healthy);
      send(response, healthy ? 200 : 503, "text/plain; charset=utf-8", JSON.stringify({ health: String(healthy) }));
    };
    if (alarms.some((alarm) => alarm.type !== AlarmType.NONE)) return reply(false);
    this.member.confirmLeader().then(
      () => reply(true),
      () => reply(false),
    );
  }

  private readBody(request: http.IncomingMessage, done: (body: Buffer | undefined) => void): void {
    const limit = this.member.config.maxRequestBytes + gatewayLimits.overheadBytes;
    const chunks: Buffer[] = [];
    let length = 0;
    let refused = false;
    request.on("data", (chunk: Buffer) => {
      length += chunk.length;
      if (length > limit) refused = true;
      else chunks.push(chunk);
    });
    request.on("end", () => done(refused ? undefined : Buffer.concat(chunks)));
  }

  private call(route: Route, body: Buffer, httpRequest: http.IncomingMessage, response: http.ServerResponse): void {
    let message: unknown;
    try {
      message = parseBody(route.method, body);
    } catch (error) {
      return sendError(response, GrpcCode.InvalidArgument, (error as Error).message);
    }
    // The call is cancelled, as a gRPC one would be, when the client goes away before the answer.
    // grpc-gateway hands the Authorization header on as the token; the connection tells the client certificate.
    const call = Object.assign(new EventEmitter(), { request: message, metadata: { token: httpRequest.headers.authorization }, source: httpRequest });
    response.on("close", () => {
      if (!response.writableFinished) call.emit("cancelled");
    });
    route.handler(call as unknown as grpc.ServerUnaryCall<unknown, unknown>, (error, result) => {
      if (error !== null && error !== undefined) return sendError(response, error.code ?? GrpcCode.Unknown, error.details ?? String(error));
      const json = toJson(route.method.output, result as never, { useProtoFieldName: true });
      send(response, 200, "application/json", JSON.stringify(json));
    });
  }
}

/** Parses a gateway request body: blank or null is the empty request, as grpc-gateway reads it. */
function parseBody(method: DescMethod, body: Buffer): unknown {
  const text = body.toString("utf8");
  const json = /^[ \t\r\n]*$/.test(text) ? {} : ((parseJsonExactly(text) as JsonValue) ?? {});
  return fromJson(method.input, json, { ignoreUnknownFields: true });
}

function send(response: http.ServerResponse, status: number, contentType: string, body: string): void {
  response.writeHead(status, { "Content-Type": contentType, "Content-Length": Buffer.byteLength(body) });
  response.end(body);
}

function sendError(response: http.ServerResponse, code: number, message: string): void {
  send(response, httpStatusOf[code] ?? 500, "application/json", JSON.stringify({ error: message, message, code }));
}
