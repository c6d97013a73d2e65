import * as http from "node:http";
import type http2 from "node:http2";
import * as net from "node:net";
import type { DescService } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { Cluster, KV, Lease, Maintenance } from "../gen/etcdserverpb/rpc_pb.js";
import { Election } from "../gen/v3electionpb/v3election_pb.js";
import { Lock } from "../gen/v3lockpb/v3lock_pb.js";
import * as errors from "../server/errors.js";
import type { EtcdServer } from "../server/member.js";
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
 * other by its first bytes.
 */
export class ClientServer {
  private readonly grpcServer: GrpcServer;
  private readonly httpServer: http.Server;
  private readonly gateway: HttpGateway;
  private readonly listeners: net.Server[] = [];
  private readonly watchHub: WatchHub;
  /** Aborts the waits of Lock, Campaign and Observe calls when the server closes. */
  private readonly recipeSignals = new CallSignals();

  constructor(private readonly member: EtcdServer) {
    const config = member.config;
    this.grpcServer = new GrpcServer({
      maxReceiveMessageBytes: config.maxRequestBytes + grpcOverheadBytes,
      maxConcurrentStreams: config.maxConcurrentStreams,
      admit: (path, metadata) => admitCall(member, path, metadata),
    });
    this.watchHub = new WatchHub(member);
    const recipes = recipeBackend(member, this.watchHub.store);
    const election = new ElectionService(recipes, this.recipeSignals);
    const implementations = new Map<DescService, grpc.UntypedServiceImplementation>([
      [KV, kvService(member)],
      [Maintenance, maintenanceService(member)],
      [Lease, leaseService(member)],
      [Cluster, clusterService(member)],
      [Lock, lockService(recipes, this.recipeSignals)],
      [Election, election.implementation()],
    ]);
    for (const [service, implementation] of implementations) this.grpcServer.addService(serviceDefinition(service), implementation);
    this.grpcServer.addService(watchServiceDefinition(), this.watchHub.service());
    // --enable-grpc-gateway=false leaves /health and /version, as in etcd.
    const gateway = (this.gateway = config.enableGrpcGateway ? new HttpGateway(member, implementations, election) : new HttpGateway(member, new Map()));
    this.httpServer = http.createServer((request, response) => gateway.handle(request, response));
  }

  /** Binds every listen URL; returns the bound addresses (host:port, with real ports for port 0). */
  async listen(): Promise<string[]> {
    const bound: string[] = [];
    for (const url of this.member.config.listenClientUrls) {
      // As etcd (Go) does, "localhost" means the IPv4 loopback address.
      const host = url.hostname === "localhost" ? "127.0.0.1" : url.hostname.replace(/^\[(.*)\]$/, "$1");
      const listener = net.createServer((socket) => this.route(socket));
      this.listeners.push(listener);
      const port = await listenOn(listener, host, Number(url.port || "2379"));
      bound.push(`${url.hostname}:${port}`);
    }
    return bound;
  }

  /** Reads a connection's first bytes, puts them back, and hands it to HTTP/2 or HTTP/1.1. */
  private route(socket: net.Socket): void {
    socket.on("error", () => socket.destroy());
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      if (head.length < http2Preface.length && http2Preface.subarray(0, head.length).equals(head)) return;
      socket.off("data", onData);
      socket.pause();
      socket.unshift(head);
      if (head.subarray(0, http2Preface.length).equals(http2Preface)) {
        this.grpcServer.acceptConnection(withAuthorityRewriting(socket));
      } else {
        this.httpServer.emit("connection", socket);
        socket.resume();
      }
    };
    socket.on("data", onData);
  }

  async close(): Promise<void> {
    this.recipeSignals.close();
    this.gateway.close();
    this.watchHub.close();
    const closing = this.listeners.map((listener) => new Promise<void>((resolve) => listener.close(() => resolve())));
    this.httpServer.closeAllConnections();
    await this.grpcServer.close();
    await Promise.all(closing);
  }
}

/** Calls a learner serves: the rest need a voting member (linearizable ranges are refused later, once the request is read). */
const learnerPaths = new Set(["/etcdserverpb.Maintenance/Status", "/etcdserverpb.KV/Range"]);

/**
 * etcd's interceptor checks: a call carrying `hasleader: true` is refused at
 * once by a member without a leader, and a learner serves only status and
 * serializable ranges.
 */
function admitCall(member: EtcdServer, path: string, metadata: http2.IncomingHttpHeaders): errors.EtcdError | undefined {
  if (metadata["hasleader"] === "true" && member.leaderId === 0n) return errors.ErrNoLeader;
  if (member.isLearner && !learnerPaths.has(path)) return errors.ErrNotSupportedForLearner;
  return undefined;
}
