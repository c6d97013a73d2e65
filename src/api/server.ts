import * as grpc from "@grpc/grpc-js";
import { Cluster, KV, Lease, Maintenance, Watch } from "../gen/etcdserverpb/rpc_pb.js";
import type { EtcdServer } from "../server/member.js";
import { clusterService } from "./cluster.js";
import { serviceDefinition } from "./grpc.js";
import { kvService } from "./kv.js";
import { leaseService } from "./lease.js";
import { maintenanceService } from "./maintenance.js";
import { WatchHub } from "./watch.js";

/** gRPC messages may exceed --max-request-bytes by this much, as in etcd, so that the server can answer "request is too large". */
const grpcOverheadBytes = 512 * 1024;

/** The client-facing gRPC server of a member, on every --listen-client-urls address. */
export class ClientServer {
  private readonly grpcServer: grpc.Server;
  private readonly watchHub: WatchHub;

  constructor(private readonly member: EtcdServer) {
    const config = member.config;
    this.grpcServer = new grpc.Server({
      "grpc.max_receive_message_length": config.maxRequestBytes + grpcOverheadBytes,
      "grpc.max_send_message_length": 2 ** 31 - 1,
      "grpc.max_concurrent_streams": 2 ** 31 - 1,
      "grpc.keepalive_time_ms": 2 * 60 * 60 * 1000,
      "grpc.keepalive_timeout_ms": 20 * 1000,
      "grpc.keepalive_permit_without_calls": 1,
      "grpc.http2.min_ping_interval_without_data_ms": 5 * 1000,
    });
    this.grpcServer.addService(serviceDefinition(KV), kvService(member));
    this.grpcServer.addService(serviceDefinition(Maintenance), maintenanceService(member));
    this.grpcServer.addService(serviceDefinition(Lease), leaseService(member));
    this.grpcServer.addService(serviceDefinition(Cluster), clusterService(member));
    this.watchHub = new WatchHub(member);
    this.grpcServer.addService(serviceDefinition(Watch), this.watchHub.service());
  }

  /** Binds every listen URL; returns the bound addresses (host:port, with real ports for port 0). */
  async listen(): Promise<string[]> {
    const bound: string[] = [];
    for (const url of this.member.config.listenClientUrls) {
      const address = `${url.hostname}:${url.port || "2379"}`;
      const port = await new Promise<number>((resolve, reject) =>
        this.grpcServer.bindAsync(address, grpc.ServerCredentials.createInsecure(), (error, port) => (error ? reject(error) : resolve(port))),
      );
      bound.push(`${url.hostname}:${port}`);
    }
    return bound;
  }

  close(): Promise<void> {
    this.watchHub.close();
    return new Promise((resolve) => {
      this.grpcServer.tryShutdown(() => resolve());
      // Streams held open by clients must not keep a stopping member alive.
      setTimeout(() => this.grpcServer.forceShutdown(), 1000).unref();
    });
  }
}
