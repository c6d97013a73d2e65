import { mkdirSync } from "node:fs";
import { AuthStore } from "../auth/auth-store.js";
import { join } from "node:path";
import { Lessor } from "../lease/lessor.js";
import { decodeConfState, encodeConfState, type ConfState } from "../raft/index.js";
import { Backend, type BackendReader } from "../mvcc/backend.js";
import { KvStore } from "../mvcc/store.js";
import { Wal } from "../wal/wal.js";
import { Alarms } from "./alarms.js";
import type { ServerConfig } from "./config.js";
import { Membership } from "./membership.js";
import { replayWal, type WalState } from "./wal-records.js";

/** What a member finds in, or makes in, its data directory. */
export interface MemberStorage {
  backend: Backend;
  store: KvStore;
  lessor: Lessor;
  alarms: Alarms;
  membership: Membership;
  auth: AuthStore;
  wal: Wal;
  /** The raft state the WAL holds. */
  walState: WalState;
  /** The member and cluster ids kept in the backend, for a WAL that lost its first records. */
  backendIds: { memberId: bigint; clusterId: bigint } | undefined;
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
 * `member/wal` or --wal-dir for the WAL), creating it for a new member, and
 * replays the WAL.
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
    unsafeNoFsync: config.unsafeNoFsync,
  });
  const lessor = new Lessor(backend);
  const store = new KvStore(backend, lessor, config.compactionBatchLimit);
  const alarms = new Alarms(backend);
  const membership = new Membership(backend);
  const auth = new AuthStore(backend);
  const { wal, records } = Wal.open(walDirectory, { unsafeNoFsync: config.unsafeNoFsync });
  const stored = backend.get("meta", memberMetaKey);
  const backendIds = stored === undefined ? undefined : { memberId: stored.readBigUInt64BE(0), clusterId: stored.readBigUInt64BE(8) };
  return { backend, store, lessor, alarms, membership, auth, wal, walState: replayWal(records), backendIds };
}

/** Records the member's ids in the backend too; inside a backend write. */
export function storeIds(backend: Backend, memberId: bigint, clusterId: bigint): void {
  const payload = Buffer.allocUnsafe(16);
  payload.writeBigUInt64BE(memberId, 0);
  payload.writeBigUInt64BE(clusterId, 8);
  backend.put("meta", memberMetaKey, payload);
}

const metaAppliedTerm = Buffer.from("consistent_term");

/** The term of the last applied entry, kept with the applied index; inside a backend write. */
export function storeAppliedTerm(backend: Backend, term: number): void {
  const payload = Buffer.allocUnsafe(8);
  payload.writeBigUInt64BE(BigInt(term));
  backend.put("meta", metaAppliedTerm, payload);
}

export function appliedTerm(reader: BackendReader): number {
  const payload = reader.get("meta", metaAppliedTerm);
  return payload === undefined ? 0 : Number(payload.readBigUInt64BE(0));
}

const metaConfState = Buffer.from("confState");

/** The raft configuration as of the applied index; inside a backend write. */
export function storeConfState(backend: Backend, state: ConfState): void {
  backend.put("meta", metaConfState, encodeConfState(state));
}

export function appliedConfState(reader: BackendReader): ConfState | undefined {
  const payload = reader.get("meta", metaConfState);
  return payload === undefined ? undefined : decodeConfState(payload);
}
