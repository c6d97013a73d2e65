import { create } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { MemberListResponseSchema, MemberSchema, type Member as MemberMessage } from "../gen/etcdserverpb/rpc_pb.js";
import type { Member } from "../server/membership.js";
import type { EtcdServer } from "../server/member.js";
import { unary } from "./grpc.js";
import { fillHeader } from "./header.js";

export function memberMessage(member: Member): MemberMessage {
  return create(MemberSchema, { ID: member.id, name: member.name, peerURLs: member.peerUrls, clientURLs: member.clientUrls, isLearner: member.isLearner });
}

/** etcd's Cluster service. */
export function clusterService(server: EtcdServer): grpc.UntypedServiceImplementation {
  return {
    memberList: unary(() => fillHeader(server, create(MemberListResponseSchema, { members: server.membership.list().map(memberMessage) }))),
  };
}
