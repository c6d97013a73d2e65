import { create } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import {
  DefragmentResponseSchema,
  HashKVResponseSchema,
  HashResponseSchema,
  MoveLeaderResponseSchema,
  ResponseHeaderSchema,
  StatusResponseSchema,
  type AlarmRequest,
  type HashKVRequest,
  type MoveLeaderRequest,
  type SnapshotRequest,
  type SnapshotResponse,
} from "../gen/etcdserverpb/rpc_pb.js";
import { StoreError } from "../mvcc/errors.js";
import { AlarmType } from "../server/alarms.js";
import { toEtcdError } from "../server/applier.js";
import * as errors from "../server/errors.js";
import { etcdVersion, type EtcdServer } from "../server/member.js";
import { authInfoOf } from "./auth-info.js";
import { unary } from "./grpc.js";
import { fillHeader } from "./header.js";
import type { ServerCall } from "./grpc-server.js";
import { streamSnapshot } from "./snapshot-stream.js";
import { hashBackend } from "../snapshot/backend-hash.js";

/** etcd's Maintenance service: status, hashes, alarms and snapshots. */
export function maintenanceService(server: EtcdServer): grpc.UntypedServiceImplementation {
  return {
    status: unary(() => {
      const { sizeBytes, sizeInUseBytes } = server.backend.size();
      return fillHeader(
        server,
        create(StatusResponseSchema, {
          version: etcdVersion,
          dbSize: BigInt(sizeBytes),
          dbSizeInUse: BigInt(sizeInUseBytes),
          leader: server.leaderId,
          raftIndex: BigInt(server.commitIndex),
          raftTerm: BigInt(server.term),
          raftAppliedIndex: BigInt(server.appliedIndex),
          errors: [
            ...server.alarms.list().map((alarm) => `memberID:${alarm.memberId} alarm:${AlarmType[alarm.type]} `),
            ...(server.leaderId === 0n ? [errors.ErrNoLeader.message] : []),
          ],
          isLearner: server.membership.get(server.memberId)?.isLearner ?? false,
        }),
      );
    }),
    hashKV: unary(async (request: HashKVRequest) => {
      try {
        const result = await server.store.hashByRevision(Number(request.revision));
        // The header carries the revision the hash was taken at, not whatever is current when it is sent.
        const header = create(ResponseHeaderSchema, { revision: BigInt(result.currentRevision) });
        return fillHeader(server, create(HashKVResponseSchema, { header, hash: result.hash, compactRevision: BigInt(result.compactRevision) }));
      } catch (error) {
        if (error instanceof StoreError) throw toEtcdError(error);
        throw error;
      }
    }),
    moveLeader: unary(async (request: MoveLeaderRequest) => {
      await server.cluster.moveLeader(request.targetID);
      return fillHeader(server, create(MoveLeaderResponseSchema));
    }),
    hash: unary(async () => {
      const view = await server.backend.view();
      try {
        // The revision of the state hashed, which later writes do not change.
        const header = create(ResponseHeaderSchema, { revision: BigInt(server.store.currentRevision) });
        const hash = await hashBackend(view);
        return fillHeader(server, create(HashResponseSchema, { header, hash }));
      } finally {
        view.done();
      }
    }),
    defragment: unary(async () => {
      server.logger.info("starting defragment", {}, "etcdserver/api/v3rpc: starting to defragment the storage backend...");
      const result = await server.backend.defragment();
      server.logger.info(
        "finished defragment",
        { "size-before-bytes": result.sizeBeforeBytes, "size-after-bytes": result.sizeAfterBytes, "commits-held-ms": Math.round(result.commitsHeldMs) },
        "etcdserver/api/v3rpc: finished defragmenting the storage backend",
      );
      return fillHeader(server, create(DefragmentResponseSchema));
    }),
    snapshot: (call: grpc.ServerWritableStream<SnapshotRequest, SnapshotResponse>) => void streamSnapshot(server.backend, call as unknown as ServerCall),
    // etcd 3.4 leaves the header of alarm responses out.
    alarm: unary(async (request: AlarmRequest, call) => server.alarm(request, await authInfoOf(server, call))),
  };
}
