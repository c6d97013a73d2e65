import { create } from "@bufbuild/protobuf";
import { createHash } from "node:crypto";
import { SnapshotResponseSchema } from "../gen/etcdserverpb/rpc_pb.js";
import type { Backend } from "../mvcc/backend.js";
import { BboltFileWriter } from "../snapshot/bbolt-writer.js";
import { etcdBucketSources } from "../snapshot/etcd-buckets.js";
import { GrpcCode } from "../server/errors.js";
import type { ServerCall } from "./grpc-server.js";

/** Bytes of the database in each response, as etcd sends them. */
export const snapshotChunkBytes = 32 * 1024;

/**
 * Maintenance.Snapshot: the backend at one point in time, written out as
 * etcd's snapshot file (a bbolt database with etcd's buckets) in chunks of
 * 32 KiB, read from one LMDB read transaction while writes go on; the last
 * response carries the sha256 of all the chunks before it, which etcd's
 * restore checks. Each response says how many bytes of the database are
 * still to come; the stream waits for the client to take each one.
 */
export async function streamSnapshot(backend: Backend, call: ServerCall): Promise<void> {
  let view;
  try {
    view = await backend.view();
  } catch (error) {
    call.fail(GrpcCode.Unavailable, error instanceof Error ? error.message : String(error));
    return;
  }
  try {
    const writer = await BboltFileWriter.plan(etcdBucketSources(view));
    const digest = createHash("sha256");
    let sentBytes = 0;
    for await (const blob of writer.chunks(snapshotChunkBytes)) {
      if (call.cancelled) return;
      sentBytes += blob.length;
      digest.update(blob);
      const response = create(SnapshotResponseSchema, { remainingBytes: BigInt(writer.sizeBytes - sentBytes), blob });
      if (!call.write(response)) await drained(call);
    }
    if (call.cancelled) return;
    call.write(create(SnapshotResponseSchema, { remainingBytes: 0n, blob: digest.digest() }));
    call.end();
  } catch (error) {
    call.fail(GrpcCode.Unknown, error instanceof Error ? error.message : String(error));
  } finally {
    view.done();
  }
}

/** Resolves once the call takes more responses, or is gone. */
function drained(call: ServerCall): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      call.off("drain", done);
      call.off("close", done);
      resolve();
    };
    call.on("drain", done);
    call.on("close", done);
  });
}
