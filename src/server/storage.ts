import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { Lessor } from "../lease/lessor.js";
import { Backend } from "../mvcc/backend.js";
import { KvStore } from "../mvcc/store.js";
import type { WalRecord } from "../wal/record.js";
import { Wal } from "../wal/wal.js";
import { Alarms } from "./alarms.js";
import type { ServerConfig } from "./config.js";
import { clusterIdFromMembers, memberIdFromPeerUrls } from "./ids.js";
import type { LogEntry } from "./replicated-log.js";
import { decodeEntry, WalRecordType } from "./single-member-log.js";

/** What a member finds in, or makes in, its data directory. */
export interface MemberStorage {
  backend: Backend;
  store: KvStore;
  lessor: Lessor;
  alarms: Alarms;
  wal: Wal;
  memberId: bigint;
  clusterId: bigint;
  /** The term of this start: one past the last start's. */
  term: number;
  /** Entries in the WAL that the backend has not applied, in order. */
  unapplied: LogEntry[];
  /** Index of the last entry in the WAL, or the applied index if the WAL holds none past it. */
  lastIndex: number;
  /** True when the data directory was created by this start. */
  fresh: boolean;
  /** Records this start must write to the WAL before serving. */
  startRecords: WalRecord[];
}

const memberMetaKey = Buffer.from("member");

export class DataDirError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DataDirError";
  }
}

/**
 * Opens the member's data directory (`member/snap/db` for the backend,
 * `member/wal` or --wal-dir for the WAL), creating it for a new member. The
 * member and cluster ids are written to the WAL when it is created and checked
 * on every later start.
 */
export function openStorage(config: ServerConfig): MemberStorage {
  const memberDirectory = join(config.dataDir, "member");
  const walDirectory = config.walDir || join(memberDirectory, "wal");
  mkdirSync(join(memberDirectory, "snap"), { recursive: true });
  const backend = new Backend({
    path: join(memberDirectory, "snap", "db"),
    mapSizeBytes: Math.max(2 * config.quotaBackendBytes, 1024 * 1024 * 1024),
    batchIntervalMs: config.backendBatchIntervalMs,
    batchLimit: config.backendBatchLimit,
  });
  const lessor = new Lessor(backend);
  const store = new KvStore(backend, lessor, config.compactionBatchLimit);
  const alarms = new Alarms(backend);
  const { wal, records } = Wal.open(walDirectory);
  const applied = store.consistentIndex();

  const expectedMemberId = memberIdFromPeerUrls(config.initialAdvertisePeerUrls, config.initialClusterToken);
  let memberId = expectedMemberId;
  let clusterId = clusterIdFromMembers([expectedMemberId]);
  let previousTerm = 1;
  let lastIndex = applied;
  const unapplied: LogEntry[] = [];
  let sawMetadata = false;
  for (const record of records) {
    if (record.type === WalRecordType.metadata) {
      const payload = Buffer.from(record.payload);
      memberId = payload.readBigUInt64BE(0);
      clusterId = payload.readBigUInt64BE(8);
      sawMetadata = true;
    } else if (record.type === WalRecordType.term) {
      previousTerm = Math.max(previousTerm, Number(Buffer.from(record.payload).readBigUInt64BE(0)));
    } else if (record.type === WalRecordType.entry) {
      const entry = decodeEntry(record.payload);
      previousTerm = Math.max(previousTerm, entry.term);
      if (entry.index > lastIndex + 1 && entry.index > applied + 1) {
        throw new DataDirError(`wal: missing entries before index ${entry.index} (have up to ${lastIndex})`);
      }
      if (entry.index > applied) unapplied.push(entry);
      lastIndex = Math.max(lastIndex, entry.index);
    }
  }
  const stored = backend.get("meta", memberMetaKey);
  if (!sawMetadata && stored !== undefined) {
    // The backend keeps its own copy of the ids, for a WAL that lost its first records.
    memberId = stored.readBigUInt64BE(0);
    clusterId = stored.readBigUInt64BE(8);
    sawMetadata = true;
  }
  const fresh = !sawMetadata && applied === 0 && records.length === 0;
  if (!sawMetadata && !fresh) throw new DataDirError(`data dir ${config.dataDir}: neither the WAL in ${walDirectory} nor the backend holds the member's ids`);
  if (stored === undefined) backend.write(() => backend.put("meta", memberMetaKey, metadataPayload(memberId, clusterId)));
  const term = previousTerm + 1;
  return { backend, store, lessor, alarms, wal, memberId, clusterId, term, unapplied, lastIndex, fresh, startRecords: startRecords(memberId, clusterId, term) };
}

/** What every WAL segment a start writes begins with: the member's ids and the term. */
export function startRecords(memberId: bigint, clusterId: bigint, term: number): WalRecord[] {
  return [
    { type: WalRecordType.metadata, payload: metadataPayload(memberId, clusterId) },
    { type: WalRecordType.term, payload: termPayload(term) },
  ];
}

function metadataPayload(memberId: bigint, clusterId: bigint): Buffer {
  const payload = Buffer.allocUnsafe(16);
  payload.writeBigUInt64BE(memberId, 0);
  payload.writeBigUInt64BE(clusterId, 8);
  return payload;
}

function termPayload(term: number): Buffer {
  const payload = Buffer.allocUnsafe(8);
  payload.writeBigUInt64BE(BigInt(term));
  return payload;
}
