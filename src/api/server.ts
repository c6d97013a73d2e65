import { rmSync } from "node:fs";
import * as http from "node:http";
import type http2 from "node:http2";
import * as net from "node:net";
import tls from "node:tls";
import type { DescService } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { Auth, Cluster, KV, Lease, Maintenance } from "../gen/etcdserverpb/rpc_pb.js";
import { Election } from "../gen/v3electionpb/v3election_pb.js";
import { Lock } from "../gen/v3lockpb/v3lock_pb.js";
import * as errors from "../server/errors.js";
import { Dashboard } from "../dashboard/serve.js";
import { listenOnPath } from "../pkg/listen-on-path.js";
import { instrumentMember } from "../server/metrics-wiring.js";
import type { EtcdServer } from "../server/member.js";
import { recordClientCommonName } from "./client-identity.js";
import { createClientTlsServer, verifiedCommonName, type ClientTlsLayer, type ClientTlsServerOptions } from "./client-tls.js";
import { authService } from "./auth.js";
import { authInfoOf } from "./auth-info.js";
import { clusterService } from "./cluster.js";
import { ElectionService } from "./election.js";
import { serviceDefinition } from "./grpc.js";
import { GrpcServer, listenOn } from "./grpc-server.js";
import { withAuthorityRewriting } from "./h2-authority.js";
import { HttpGateway } from "./http-gateway.js";
import { kvService } from "./kv.js";
import { leaseService } from "./lease.js";
import { lockService } from "./lock.js";
import { maintenanceService } from "./maintenance.js";
import { CallSignals, recipeBackend } from "./recipe-backend.js";
import { WatchHub, watchServiceDefinition } from "./watch.js";

/** gRPC messages may exceed --max-request-bytes by this much, as in etcd, so that the server can answer "request is too large". */
const grpcOverheadBytes = 512 * 1024;

/** The HTTP/2 connection preface starts with these bytes; an HTTP/1.1 request never does. */
const http2Preface = Buffer.from("PRI");

/**
 * The client port of a member, on every --listen-client-urls address: gRPC
 * over HTTP/2, and on the same port, as etcd does, HTTP/1.1 for `/health`,
 * `/version` and the `/v3` JSON gateway. Each connection goes to one or the
 * other by its first bytes. On an `https` (or `unixs`) URL the connection is
 * TLS first (see client-tls.ts), and the same routing follows on what it
 * decrypts.
 */
export class ClientServer {
  private readonly grpcServer: GrpcServer;
  private readonly httpServer: http.Server;
  private readonly gateway: HttpGateway;
  private readonly listeners: net.Server[] = [];
  /** Every accepted connection still open, to be ended at close even if it never spoke (or never finished its TLS handshake). */
  private readonly connections = new Set<net.Socket>();
  private readonly watchHub: WatchHub;
  /** What --listen-metrics-urls listeners serve. */
  private readonly metricsServer = http.createServer((request, response) => this.gateway.handleMetricsOnly(request, response));
  private metricsTlsLayer: ClientTlsLayer | undefined;
  private readonly tlsLayer: ClientTlsLayer | undefined;
  /** Aborts the waits of Lock, Campaign and Observe calls when the server closes. */
  private readonly recipeSignals: CallSignals;

  /** `tlsOptions`: client TLS (from clientTlsServerOptions), needed when a listen URL is `https` or `unixs`. */
  constructor(
    private readonly member: EtcdServer,
    tlsOptions?: ClientTlsServerOptions,
  ) {
    const config = member.config;
    this.watchHub = new WatchHub(member);
    this.recipeSignals = new CallSignals(member);
    const metrics = instrumentMember(member, () => this.watchHub.store.stats());
    this.grpcServer = new GrpcServer({
      maxReceiveMessageBytes: config.maxRequestBytes + grpcOverheadBytes,
      maxConcurrentStreams: config.maxConcurrentStreams,
      admit: (path, metadata, stream) => admitCall(member, path, metadata, stream),
      observer: metrics.grpc,
    });
    this.watchHub = new WatchHub(member);
    const recipes = recipeBackend(member, this.watchHub.store);
    const election = new ElectionService(recipes, this.recipeSignals);
    const implementations = new Map<DescService, grpc.UntypedServiceImplementation>([
      [KV, kvService(member)],
      [Maintenance, maintenanceService(member)],
      [Lease, leaseService(member)],
      [Cluster, clusterService(member)],
      [Auth, authService(member)],
      [Lock, lockService(recipes, this.recipeSignals)],
      [Election, election.implementation()],
    ]);
    for (const [service, implementation] of implementations) this.grpcServer.addService(serviceDefinition(service), implementation);
    this.grpcServer.addService(watchServiceDefinition(), this.watchHub.service());
    metrics.initializeMethods(this.grpcServer.methodLabels());
    // --enable-grpc-gateway=false leaves /health, /version, /metrics and /dashboard, as in etcd.
    const gatewayOn = config.enableGrpcGateway;
    this.gateway = new HttpGateway(member, gatewayOn ? implementations : new Map(), metrics, config.dashboard ? new Dashboard() : undefined, gatewayOn ? election : undefined);
    this.httpServer = http.createServer((request, response) => this.gateway.handle(request, response));
    if (tlsOptions !== undefined) {
      this.tlsLayer = createClientTlsServer(tlsOptions, member.logger, (socket) => this.route(socket));
      this.metricsTlsLayer = createClientTlsServer(tlsOptions, member.logger, (socket) => this.metricsServer.emit("connection", socket));
    }
  }

  /**
   * Binds every listen URL; returns the bound addresses: host:port (with real
   * ports for port 0), or the socket path of a `unix`/`unixs` URL.
   */
  async listen(): Promise<string[]> {
    const bound: string[] = [];
    for (const url of this.member.config.listenClientUrls) {
      const secure = url.protocol === "https:" || url.protocol === "unixs:";
      const tlsLayer = secure ? this.tlsLayer : undefined;
      if (secure && tlsLayer === undefined) throw new Error(`no client TLS for ${url.href}`);
      const listener = net.createServer((socket) => {
        this.connections.add(socket);
        socket.once("close", () => this.connections.delete(socket));
        if (tlsLayer === undefined) this.route(socket);
        else tlsLayer.accept(socket);
      });
      this.listeners.push(listener);
      if (url.protocol === "unix:" || url.protocol === "unixs:") {
        // As in etcd, the socket path is the URL's host and path ("unix://localhost:2379" is the file "localhost:2379"), and a stale file is replaced.
        const path = url.host + url.pathname;
        rmSync(path, { force: true });
        await listenOnPath(listener, path);
        bound.push(path);
        continue;
      }
      const port = await listenOn(listener, loopbackHost(url), Number(url.port || "2379"));
      bound.push(`${url.hostname}:${port}`);
    }
    // --listen-metrics-urls: /metrics and /health, over the client port's TLS for https URLs, as in etcd.
    for (const url of this.member.config.listenMetricsUrls) {
      const tlsLayer = url.protocol === "https:" ? this.metricsTlsLayer : undefined;
      if (url.protocol === "https:" && tlsLayer === undefined) throw new Error(`no client TLS for ${url.href}`);
      const listener = net.createServer((socket) => {
        this.connections.add(socket);
        socket.once("close", () => this.connections.delete(socket));
        if (tlsLayer === undefined) this.metricsServer.emit("connection", socket);
        else tlsLayer.accept(socket);
      });
      this.listeners.push(listener);
      await listenOn(listener, loopbackHost(url), Number(url.port));
    }
    return bound;
  }

  private route(socket: net.Socket): void {
    routeClientConnection(socket, this.grpcServer, this.httpServer);
  }

  async close(): Promise<void> {
    this.recipeSignals.close();
    this.gateway.close();
    this.watchHub.close();
    const closing = this.listeners.map((listener) => new Promise<void>((resolve) => listener.close(() => resolve())));
    this.httpServer.closeAllConnections();
    this.metricsServer.closeAllConnections();
    await this.grpcServer.close();
    // What is left never became an HTTP/1.1 or HTTP/2 connection.
    for (const socket of this.connections) socket.destroy();
    await Promise.all(closing);
  }
}

/** The host to bind a URL's listener to: as etcd (Go) does, "localhost" means the IPv4 loopback address. */
function loopbackHost(url: URL): string {
  return url.hostname === "localhost" ? "127.0.0.1" : url.hostname.replace(/^\[(.*)\]$/, "$1");
}

/**
 * Reads a connection's first bytes, puts them back, and hands it to HTTP/2
 * (gRPC, through the `:authority` rewriter) or to HTTP/1.1. A TLS connection
 * is routed on what it decrypts; its verified client name is recorded on its
 * HTTP/2 session too, where gRPC calls find it.
 */
export function routeClientConnection(socket: net.Socket, grpcServer: GrpcServer, httpServer: http.Server): void {
  socket.on("error", () => socket.destroy());
  let head = Buffer.alloc(0);
  const onData = (chunk: Buffer): void => {
    head = Buffer.concat([head, chunk]);
    if (head.length < http2Preface.length && http2Preface.subarray(0, head.length).equals(head)) return;
    socket.off("data", onData);
    socket.pause();
    socket.unshift(head);
    if (head.subarray(0, http2Preface.length).equals(http2Preface)) {
      const session = grpcServer.acceptConnection(withAuthorityRewriting(socket));
      if (session !== undefined && socket instanceof tls.TLSSocket) recordClientCommonName(session, verifiedCommonName(socket));
    } else {
      httpServer.emit("connection", socket);
      socket.resume();
    }
  };
  socket.on("data", onData);
}

/** Calls a learner serves: the rest need a voting member (linearizable ranges are refused later, once the request is read). */
const learnerPaths = new Set(["/etcdserverpb.Maintenance/Status", "/etcdserverpb.KV/Range"]);

/**
 * etcd's interceptor checks: a call carrying `hasleader: true` is refused at
 * once by a member without a leader, and a learner serves only status and
 * serializable ranges.
 */
function admitCall(member: EtcdServer, path: string, metadata: http2.IncomingHttpHeaders, stream: http2.ServerHttp2Stream): errors.EtcdError | undefined | Promise<errors.EtcdError | undefined> {
  if (metadata["hasleader"] === "true" && member.leaderId === 0n) return errors.ErrNoLeader;
  if (member.isLearner && !learnerPaths.has(path)) return errors.ErrNotSupportedForLearner;
  if (adminPaths.has(path) && member.authStore.isEnabled) return checkAdminCall(member, path, metadata, stream);
  return undefined;
}

async function checkAdminCall(member: EtcdServer, path: string, metadata: http2.IncomingHttpHeaders, stream: http2.ServerHttp2Stream): Promise<errors.EtcdError | undefined> {
  try {
    member.authStore.checkAdmin(await authInfoOf(member, { metadata, source: stream }));
    return undefined;
  } catch (error) {
    if (!(error instanceof errors.EtcdError)) throw error;
    // etcd's maintenance service hands the auth store's own error to gRPC unconverted: code Unknown, "auth: …".
    return path.startsWith("/etcdserverpb.Maintenance/") ? new errors.EtcdError(errors.GrpcCode.Unknown, error.message.replace(/^etcdserver: /, "auth: ")) : error;
  }
}

/** Calls only a user with the root role may make once auth is on (etcd's maintenance and membership checks). */
const adminPaths = new Set([
  "/etcdserverpb.Maintenance/Defragment",
  "/etcdserverpb.Maintenance/Snapshot",
  "/etcdserverpb.Maintenance/Hash",
  "/etcdserverpb.Maintenance/HashKV",
  "/etcdserverpb.Cluster/MemberAdd",
  "/etcdserverpb.Cluster/MemberRemove",
  "/etcdserverpb.Cluster/MemberUpdate",
  "/etcdserverpb.Cluster/MemberPromote",
]);
