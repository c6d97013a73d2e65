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
import { GrpcCode } from "../server/errors.js";
import { authInfoOf } from "./auth-info.js";
import { toServiceError, unary } from "./grpc.js";
import type { ServerCall } from "./grpc-server.js";
import { fillHeader } from "./header.js";

/** etcd's Lease service. */
export function leaseService(server: EtcdServer): grpc.UntypedServiceImplementation {
  return {
    leaseGrant: unary(async (request: LeaseGrantRequest) => fillHeader(server, await server.leaseGrant(request))),
    leaseRevoke: unary(async (request: LeaseRevokeRequest, call) => fillHeader(server, await server.leaseRevoke(request, await authInfoOf(server, call)))),
    leaseTimeToLive: unary(async (request: LeaseTimeToLiveRequest) => fillHeader(server, await server.leases.timeToLive(request))),
    leaseKeepAlive: (call: grpc.ServerDuplexStream<LeaseKeepAliveRequest, LeaseKeepAliveResponse>) => {
      // Answers go out in the order the requests came, each once its renewal (maybe by the leader) is done.
      let previous: Promise<unknown> = Promise.resolve();
      call.on("data", (request: LeaseKeepAliveRequest) => {
        const renewal = server.leases.renew(request.ID);
        previous = Promise.all([renewal, previous]).then(
          ([ttl]) => {
            if (!call.destroyed) call.write(fillHeader(server, create(LeaseKeepAliveResponseSchema, { ID: request.ID, TTL: BigInt(ttl) })));
          },
          (error: unknown) => {
            const status = toServiceError(error);
            if (!call.destroyed) (call as unknown as ServerCall).fail(status.code ?? GrpcCode.Unknown, status.details ?? "");
          },
        );
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
