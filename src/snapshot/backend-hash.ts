import { setImmediate as nextTurn } from "node:timers/promises";
import type { BackendView } from "../mvcc/backend.js";
import { crc32c } from "../pkg/crc32c.js";
import { etcdBucketSources } from "./etcd-buckets.js";

/** Records hashed between two yields to the event loop. */
const recordsPerTurn = 4096;

/**
 * Maintenance.Hash: a CRC-32C over the whole backend as etcd's buckets hold
 * it (bucket names, then each key and value), leaving out the applied index,
 * as etcd does. Members that applied the same entries give the same hash;
 * tetcd's per-member records (its own ids) are not among etcd's buckets.
 */
export async function hashBackend(view: BackendView): Promise<number> {
  let hash = 0;
  let records = 0;
  for (const bucket of etcdBucketSources(view)) {
    hash = crc32c(Buffer.from(bucket.name), hash);
    for (const { key, value } of bucket.records()) {
      if (bucket.name === "meta" && key.toString("latin1") === "consistent_index") continue;
      hash = crc32c(value, crc32c(key, hash));
      if (++records % recordsPerTurn === 0) await nextTurn();
    }
  }
  return hash;
}
