import { create } from "@bufbuild/protobuf";
import { ResponseHeaderSchema, type ResponseHeader } from "../gen/etcdserverpb/rpc_pb.js";
import type { EtcdServer } from "../server/member.js";

/**
 * Completes a response's header as etcd does: cluster and member id and raft
 * term always, the store's current revision when the applier left none.
 */
export function fillHeader<Response extends { header?: ResponseHeader }>(server: EtcdServer, response: Response): Response {
  const header = response.header ?? create(ResponseHeaderSchema);
  header.clusterId = server.clusterId;
  header.memberId = server.memberId;
  header.raftTerm = BigInt(server.term);
  if (header.revision === 0n) header.revision = BigInt(server.store.currentRevision);
  response.header = header;
  return response;
}

/** The header of the Cluster service's answers: etcd 3.4 leaves the revision out of them. */
export function fillClusterHeader<Response extends { header?: ResponseHeader }>(server: EtcdServer, response: Response): Response {
  const header = create(ResponseHeaderSchema, { clusterId: server.clusterId, memberId: server.memberId, raftTerm: BigInt(server.term) });
  response.header = header;
  return response;
}
