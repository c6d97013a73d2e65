import { Cluster, KV, Lease, Maintenance } from "../gen/etcdserverpb/rpc_pb.js";
import type { EtcdServer } from "../server/member.js";
import { clusterService } from "./cluster.js";
import { serviceDefinition } from "./grpc.js";
import { GrpcServer } from "./grpc-server.js";
import { kvService } from "./kv.js";
import { leaseService } from "./lease.js";
import { maintenanceService } from "./maintenance.js";
import { WatchHub, watchServiceDefinition } from "./watch.js";

/** gRPC messages may exceed --max-request-bytes by this much, as in etcd, so that the server can answer "request is too large". */
const grpcOverheadBytes = 512 * 1024;

/** The client-facing gRPC server of a member, on every --listen-client-urls address. */
export class ClientServer {
  private readonly grpcServer: GrpcServer;
  private readonly watchHub: WatchHub;

  constructor(private readonly member: EtcdServer) {
    const config = member.config;
    this.grpcServer = new GrpcServer({
      maxReceiveMessageBytes: config.maxRequestBytes + grpcOverheadBytes,
      maxConcurrentStreams: 2 ** 32 - 1,
    });
    this.grpcServer.addService(serviceDefinition(KV), kvService(member));
    this.grpcServer.addService(serviceDefinition(Maintenance), maintenanceService(member));
    this.grpcServer.addService(serviceDefinition(Lease), leaseService(member));
    this.grpcServer.addService(serviceDefinition(Cluster), clusterService(member));
    this.watchHub = new WatchHub(member);
    this.grpcServer.addService(watchServiceDefinition(), this.watchHub.service());
  }

  /** Binds every listen URL; returns the bound addresses (host:port, with real ports for port 0). */
  async listen(): Promise<string[]> {
    const bound: string[] = [];
    for (const url of this.member.config.listenClientUrls) {
      // As etcd (Go) does, "localhost" means the IPv4 loopback address.
      const host = url.hostname === "localhost" ? "127.0.0.1" : url.hostname.replace(/^\[(.*)\]$/, "$1");
      const port = await this.grpcServer.listen(host, Number(url.port || "2379"));
      bound.push(`${url.hostname}:${port}`);
    }
    return bound;
  }

  close(): Promise<void> {
    this.watchHub.close();
    return this.grpcServer.close();
  }
}
