import { create } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import {
  MemberAddResponseSchema,
  MemberListResponseSchema,
  MemberPromoteResponseSchema,
  MemberRemoveResponseSchema,
  MemberSchema,
  MemberUpdateResponseSchema,
  type Member as MemberMessage,
  type MemberAddRequest,
  type MemberPromoteRequest,
  type MemberRemoveRequest,
  type MemberUpdateRequest,
} from "../gen/etcdserverpb/rpc_pb.js";
import type { Member } from "../server/membership.js";
import type { EtcdServer } from "../server/member.js";
import { unary } from "./grpc.js";
import { fillClusterHeader } from "./header.js";

export function memberMessage(member: Member): MemberMessage {
  return create(MemberSchema, { ID: member.id, name: member.name, peerURLs: member.peerUrls, clientURLs: member.clientUrls, isLearner: member.isLearner });
}

/** etcd's Cluster service: every answer lists the members as this member knows them once the change is applied. */
export function clusterService(server: EtcdServer): grpc.UntypedServiceImplementation {
  const members = () => server.membership.list().map(memberMessage);
  return {
    memberList: unary(() => fillClusterHeader(server, create(MemberListResponseSchema, { members: members() }))),
    memberAdd: unary(async (request: MemberAddRequest) => {
      const added = await server.cluster.add([...request.peerURLs], request.isLearner);
      return fillClusterHeader(server, create(MemberAddResponseSchema, { member: memberMessage(added), members: members() }));
    }),
    memberRemove: unary(async (request: MemberRemoveRequest) => {
      await server.cluster.remove(request.ID);
      return fillClusterHeader(server, create(MemberRemoveResponseSchema, { members: members() }));
    }),
    memberUpdate: unary(async (request: MemberUpdateRequest) => {
      await server.cluster.update(request.ID, [...request.peerURLs]);
      return fillClusterHeader(server, create(MemberUpdateResponseSchema, { members: members() }));
    }),
    memberPromote: unary(async (request: MemberPromoteRequest) => {
      await server.cluster.promote(request.ID);
      return fillClusterHeader(server, create(MemberPromoteResponseSchema, { members: members() }));
    }),
  };
}
