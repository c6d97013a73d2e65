import { create } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { MemberListResponseSchema, MemberSchema } from "../gen/etcdserverpb/rpc_pb.js";
import type { EtcdServer } from "../server/member.js";
import { unary } from "./grpc.js";
import { fillHeader } from "./header.js";

/** etcd's Cluster service, for the single-member cluster built so far: listing members. */
export function clusterService(server: EtcdServer): grpc.UntypedServiceImplementation {
  return {
    memberList: unary(() => {
      const self = create(MemberSchema, {
        ID: server.memberId,
        name: server.config.name,
        peerURLs: server.config.initialAdvertisePeerUrls,
        clientURLs: server.config.advertiseClientUrls,
      });
      return fillHeader(server, create(MemberListResponseSchema, { members: [self] }));
    }),
  };
}
