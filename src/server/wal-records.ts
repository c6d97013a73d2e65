import {
  decodeEntry,
  decodeHardState,
  decodeSnapshot,
  emptyHardState,
  encodeEntry,
  encodeHardState,
  encodeSnapshot,
  type Entry,
  type HardState,
  type SnapshotMetadata,
} from "../raft/index.js";
import type { WalRecord } from "../wal/record.js";

/**
 * What a member writes to its WAL, as etcd's WAL holds it: the member's ids,
 * raft entries, hard states and snapshot markers. Entries, hard states and
 * snapshot markers are raftpb messages.
 */
export const WalRecordType = {
  /** Member and cluster ids: 8 + 8 bytes, big-endian. */
  metadata: 1,
  /** One raftpb.Entry. */
  entry: 2,
  /** One raftpb.HardState: term, vote, commit. */
  hardState: 3,
  /**
   * A raftpb.Snapshot without data: the index, term and configuration of a
   * point whose effects are in the backend. Replay starts after the last one.
   */
  snapshot: 4,
} as const;

export function metadataRecord(memberId: bigint, clusterId: bigint): WalRecord {
  const payload = Buffer.allocUnsafe(16);
  payload.writeBigUInt64BE(memberId, 0);
  payload.writeBigUInt64BE(clusterId, 8);
  return { type: WalRecordType.metadata, payload };
}

export function entryRecord(entry: Entry): WalRecord {
  return { type: WalRecordType.entry, payload: encodeEntry(entry) };
}

export function hardStateRecord(state: HardState): WalRecord {
  return { type: WalRecordType.hardState, payload: encodeHardState(state) };
}

export function snapshotRecord(metadata: SnapshotMetadata): WalRecord {
  return { type: WalRecordType.snapshot, payload: encodeSnapshot({ data: new Uint8Array(0), metadata }) };
}

/** The raft state a WAL holds. */
export interface WalState {
  /** Undefined when the WAL holds no metadata record (a new member). */
  ids: { memberId: bigint; clusterId: bigint } | undefined;
  hardState: HardState;
  /** The last snapshot marker; entries start after it. */
  snapshot: SnapshotMetadata | undefined;
  /** Entries after the snapshot, contiguous, later records replacing earlier ones at the same index. */
  entries: Entry[];
}

export class WalReplayError extends Error {
  constructor(message: string) {
    super(`wal: ${message}`);
    this.name = "WalReplayError";
  }
}

/**
 * Replays a WAL's records in order. An entry at an index already seen replaces
 * that entry and everything after it (a new leader overwrote an uncommitted
 * tail); a gap in indexes is corruption. Whether the entries reach back far
 * enough is for the caller to judge against the backend's applied index.
 */
export function replayWal(records: readonly WalRecord[]): WalState {
  const state: WalState = { ids: undefined, hardState: emptyHardState(), snapshot: undefined, entries: [] };
  for (const record of records) {
    switch (record.type) {
      case WalRecordType.metadata: {
        const payload = Buffer.from(record.payload);
        state.ids = { memberId: payload.readBigUInt64BE(0), clusterId: payload.readBigUInt64BE(8) };
        break;
      }
      case WalRecordType.hardState:
        state.hardState = decodeHardState(record.payload);
        break;
      case WalRecordType.snapshot: {
        const metadata = decodeSnapshot(record.payload).metadata;
        if (state.snapshot === undefined || metadata.index >= state.snapshot.index) {
          state.snapshot = metadata;
          state.entries = state.entries.filter((entry) => entry.index > metadata.index);
        }
        break;
      }
      case WalRecordType.entry:
        appendReplayed(state, decodeEntry(record.payload));
        break;
      default:
        throw new WalReplayError(`unknown record type ${record.type}`);
    }
  }
  return state;
}

function appendReplayed(state: WalState, entry: Entry): void {
  if (state.snapshot !== undefined && entry.index <= state.snapshot.index) return;
  const first = state.entries[0]?.index;
  // After a purge the WAL's entries start wherever its oldest kept segment does.
  if (first === undefined || entry.index < first) {
    state.entries = [entry];
    return;
  }
  const expected = first + state.entries.length;
  if (entry.index > expected) throw new WalReplayError(`missing entries before index ${entry.index} (have up to ${expected - 1})`);
  state.entries.length = entry.index - first;
  state.entries.push(entry);
}
