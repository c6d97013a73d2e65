import { create } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { LeaseLeasesResponseSchema, LeaseStatusSchema, type LeaseGrantRequest, type LeaseRevokeRequest } from "../gen/etcdserverpb/rpc_pb.js";
import type { EtcdServer } from "../server/member.js";
import { unary } from "./grpc.js";
import { fillHeader } from "./header.js";

/** The parts of etcd's Lease service that need no expiry clock: grant, revoke, list. */
export function leaseService(server: EtcdServer): grpc.UntypedServiceImplementation {
  return {
    leaseGrant: unary(async (request: LeaseGrantRequest) => fillHeader(server, await server.leaseGrant(request))),
    leaseRevoke: unary(async (request: LeaseRevokeRequest) => fillHeader(server, await server.leaseRevoke(request))),
    leaseLeases: unary(async () => {
      await server.linearizableRead();
      const leases = server.lessor.all().map((lease) => create(LeaseStatusSchema, { ID: lease.id }));
      return fillHeader(server, create(LeaseLeasesResponseSchema, { leases }));
    }),
  };
}
