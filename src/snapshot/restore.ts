import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { Backend, type BucketName } from "../mvcc/backend.js";
import { ConfigError } from "../server/config.js";
import { clusterIdFromMembers, memberIdFromPeerUrls } from "../server/ids.js";
import { encodeMember, type Member } from "../server/membership.js";
import { storeAppliedTerm, storeConfState, storeIds } from "../server/storage.js";
import { BboltReader } from "./bbolt-reader.js";
import { checkSnapshotHash } from "./snapshot-file.js";

export interface RestoreOptions {
  snapshotPath: string;
  dataDir: string;
  name: string;
  /** name → peer URLs, as --initial-cluster gives them. */
  initialCluster: ReadonlyMap<string, readonly string[]>;
  initialClusterToken: string;
  initialAdvertisePeerUrls: readonly string[];
  skipHashCheck: boolean;
  /** Told the bytes of records copied so far and the database's size, every batch. */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
}

export interface RestoreResult {
  memberId: bigint;
  clusterId: bigint;
  /** Records written to the backend. */
  records: number;
}

/** Records written to the backend per write transaction, so that memory stays bounded whatever the snapshot's size. */
const recordsPerBatch = 10_000;

/** The meta records restored from a snapshot; the rest (the applied index among them) belong to the new cluster. */
const restoredMetaKeys = new Set(["scheduledCompactRev", "finishedCompactRev"]);

/**
 * Builds a member's data dir from a snapshot file, saved from tetcd or from
 * etcd 3.4, as etcd's restore does: the data (keys with their revisions,
 * leases, the compaction point, alarms) is kept, and the membership is that
 * of a new cluster given by --initial-cluster, with etcd's member and cluster
 * ids. Every member of the new cluster is restored from the same file; the
 * backend records the new configuration as applied at index (members count),
 * term 1, so that each starts where the others do.
 */
export async function restoreSnapshot(options: RestoreOptions): Promise<RestoreResult> {
  checkSnapshotHash(options.snapshotPath, options.skipHashCheck);
  const members = [...options.initialCluster].map(([name, peerUrls]): Member => ({
    id: memberIdFromPeerUrls(peerUrls, options.initialClusterToken),
    name,
    peerUrls: [...peerUrls],
    clientUrls: [],
    isLearner: false,
  }));
  const self = members.find((member) => member.name === options.name);
  if (self === undefined) throw new ConfigError(`couldn't find local name "${options.name}" in the initial cluster configuration`);
  if ([...self.peerUrls].sort().join(",") !== [...options.initialAdvertisePeerUrls].sort().join(",")) {
    throw new ConfigError(`--initial-cluster has ${options.name}=${self.peerUrls.join(",")} but missing from --initial-advertise-peer-urls=${options.initialAdvertisePeerUrls.join(",")}`);
  }
  if (existsSync(options.dataDir)) throw new ConfigError(`data-dir "${options.dataDir}" exists`);
  const clusterId = clusterIdFromMembers(members.map((member) => member.id));

  const reader = new BboltReader(options.snapshotPath);
  const databaseDirectory = join(options.dataDir, "member", "snap", "db");
  mkdirSync(databaseDirectory, { recursive: true });
  const backend = new Backend({ path: databaseDirectory, mapSizeBytes: Math.max(4 * reader.sizeBytes, 1024 * 1024 * 1024) });
  let records = 0;
  let doneBytes = 0;
  try {
    const copy = async (from: string, to: BucketName, convert: (key: Buffer, value: Buffer) => { key: Buffer; value: Buffer } | undefined): Promise<void> => {
      let batch: Array<{ key: Buffer; value: Buffer }> = [];
      const flush = async (): Promise<void> => {
        const writes = batch;
        batch = [];
        backend.write(() => {
          for (const { key, value } of writes) backend.put(to, key, value);
        });
        await backend.flushed();
        options.onProgress?.(Math.min(doneBytes, reader.sizeBytes), reader.sizeBytes);
      };
      for (const { key, value } of reader.records(from)) {
        const converted = convert(Buffer.from(key), Buffer.from(value));
        if (converted === undefined) continue;
        batch.push(converted);
        records++;
        doneBytes += key.length + value.length;
        if (batch.length >= recordsPerBatch) await flush();
      }
      await flush();
    };
    await copy("key", "key", (key, value) => ({ key, value }));
    await copy("lease", "lease", (key, value) => ({ key, value }));
    await copy("meta", "meta", (key, value) => (restoredMetaKeys.has(key.toString("latin1")) ? { key, value } : undefined));
    await copy("alarm", "alarm", (key) => ({ key: alarmKeyOf(key), value: Buffer.alloc(0) }));
    // Users, roles, and auth's enabled flag and revision: the same keys and encodings in etcd's file and in tetcd's backend.
    for (const bucket of ["auth", "authUsers", "authRoles"] as const) await copy(bucket, bucket, (key, value) => ({ key, value }));
    backend.write(() => {
      for (const member of members) backend.put("members", Buffer.from(member.id.toString(16).padStart(16, "0")), encodeMember(member));
      const consistentIndex = Buffer.alloc(8);
      consistentIndex.writeBigUInt64BE(BigInt(members.length));
      backend.put("meta", Buffer.from("consistent_index"), consistentIndex);
      storeAppliedTerm(backend, 1);
      storeConfState(backend, { voters: members.map((member) => member.id), learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false });
      storeIds(backend, self.id, clusterId);
    });
    await backend.flushed();
    options.onProgress?.(reader.sizeBytes, reader.sizeBytes);
  } finally {
    reader.close();
    await backend.close();
  }
  return { memberId: self.id, clusterId, records };
}

/** tetcd's alarm key (member id, alarm type) from etcd's: an AlarmMember message (memberID = 1, alarm = 2). */
function alarmKeyOf(message: Buffer): Buffer {
  let memberId = 0n;
  let alarm = 0n;
  for (let offset = 0; offset < message.length; ) {
    const tag = message[offset++]!;
    let value = 0n;
    for (let shift = 0n; ; shift += 7n) {
      const byte = message[offset++];
      if (byte === undefined) throw new ConfigError("snapshot: malformed alarm record");
      value |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) break;
    }
    if (tag === 0x08) memberId = value;
    else if (tag === 0x10) alarm = value;
  }
  const key = Buffer.alloc(12);
  key.writeBigUInt64BE(memberId, 0);
  key.writeUInt32BE(Number(alarm), 8);
  return key;
}
