import { create } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import {
  LeaseKeepAliveResponseSchema,
  LeaseLeasesResponseSchema,
  LeaseStatusSchema,
  type LeaseGrantRequest,
  type LeaseKeepAliveRequest,
  type LeaseKeepAliveResponse,
  type LeaseRevokeRequest,
  type LeaseTimeToLiveRequest,
} from "../gen/etcdserverpb/rpc_pb.js";
import type { EtcdServer } from "../server/member.js";
import { unary } from "./grpc.js";
import { fillHeader } from "./header.js";

/** etcd's Lease service. */
export function leaseService(server: EtcdServer): grpc.UntypedServiceImplementation {
  return {
    leaseGrant: unary(async (request: LeaseGrantRequest) => fillHeader(server, await server.leaseGrant(request))),
    leaseRevoke: unary(async (request: LeaseRevokeRequest) => fillHeader(server, await server.leaseRevoke(request))),
    leaseTimeToLive: unary(async (request: LeaseTimeToLiveRequest) => fillHeader(server, await server.leaseTimeToLive(request))),
    leaseKeepAlive: (call: grpc.ServerDuplexStream<LeaseKeepAliveRequest, LeaseKeepAliveResponse>) => {
      call.on("data", (request: LeaseKeepAliveRequest) => {
        const ttl = server.leaseRenew(request.ID);
        call.write(fillHeader(server, create(LeaseKeepAliveResponseSchema, { ID: request.ID, TTL: BigInt(ttl) })));
      });
      call.on("end", () => call.end());
      call.on("error", () => call.end());
    },
    leaseLeases: unary(async () => {
      await server.linearizableRead();
      const leases = server.lessor.all().map((lease) => create(LeaseStatusSchema, { ID: lease.id }));
      return fillHeader(server, create(LeaseLeasesResponseSchema, { leases }));
    }),
  };
}
