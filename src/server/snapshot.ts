import { setImmediate as nextTurn } from "node:timers/promises";
import { bucketNames, type Backend, type BackendView, type BucketName } from "../mvcc/backend.js";
import { consistentIndexOf } from "../mvcc/store.js";
import { ErrSnapshotTemporarilyUnavailable, MemoryStorage, type Snapshot } from "../raft/index.js";
import { appliedConfState, appliedTerm } from "./storage.js";

/**
 * A raft snapshot's data is the whole backend: every record of every bucket,
 * as `[u8 bucket][u32 key length][key][u32 value length][value]`, read from
 * one LMDB read transaction, so that it is exactly the state at the applied
 * index that transaction records. The member's own ids are left out: they
 * belong to the receiver.
 */
const ownIdsKey = Buffer.from("member");

function isOwnIds(bucket: BucketName, key: Buffer): boolean {
  return bucket === "meta" && key.equals(ownIdsKey);
}

/** Records encoded between two yields to the event loop, so that writes go on while a snapshot is made. */
const recordsPerTurn = 4096;

/** The raft snapshot `view` holds: its data, and the index, term and configuration it records. */
export async function snapshotOfView(view: BackendView): Promise<Snapshot> {
  const index = consistentIndexOf(view);
  const confState = appliedConfState(view);
  if (index === 0 || confState === undefined) throw ErrSnapshotTemporarilyUnavailable;
  const metadata = { index, term: appliedTerm(view), confState };
  const parts: Buffer[] = [];
  let records = 0;
  for (const [position, bucket] of bucketNames.entries()) {
    for (const { key, value } of view.records(bucket)) {
      if (isOwnIds(bucket, key)) continue;
      const header = Buffer.allocUnsafe(5);
      header.writeUInt8(position, 0);
      header.writeUInt32BE(key.length, 1);
      const valueLength = Buffer.allocUnsafe(4);
      valueLength.writeUInt32BE(value.length, 0);
      parts.push(header, key, valueLength, value);
      if (++records % recordsPerTurn === 0) await nextTurn();
    }
  }
  return { data: Buffer.concat(parts), metadata };
}

export class SnapshotFormatError extends Error {
  constructor(offset: number) {
    super(`snapshot: malformed backend record at offset ${offset}`);
    this.name = "SnapshotFormatError";
  }
}

/** Replaces every record of the backend (but the member's ids) with the snapshot's; inside a backend write. */
export function installBackendSnapshot(backend: Backend, data: Uint8Array): void {
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const records: Array<{ bucket: BucketName; key: Buffer; value: Buffer }> = [];
  for (let offset = 0; offset < bytes.length; ) {
    if (offset + 5 > bytes.length) throw new SnapshotFormatError(offset);
    const bucket = bucketNames[bytes.readUInt8(offset)];
    const keyLength = bytes.readUInt32BE(offset + 1);
    const keyEnd = offset + 5 + keyLength;
    if (bucket === undefined || keyEnd + 4 > bytes.length) throw new SnapshotFormatError(offset);
    const valueEnd = keyEnd + 4 + bytes.readUInt32BE(keyEnd);
    if (valueEnd > bytes.length) throw new SnapshotFormatError(offset);
    records.push({ bucket, key: bytes.subarray(offset + 5, keyEnd), value: bytes.subarray(keyEnd + 4, valueEnd) });
    offset = valueEnd;
  }
  for (const bucket of bucketNames) {
    for (const { key } of backend.records(bucket)) if (!isOwnIds(bucket, key)) backend.delete(bucket, key);
  }
  for (const { bucket, key, value } of records) backend.put(bucket, Buffer.from(key), value);
}

/** How long a snapshot made for a follower is kept for others (or a retry) before it is let go. */
const preparedSnapshotKeptMs = 60_000;

/**
 * The raft log in memory. Its snapshot, asked for when a follower needs
 * compacted entries, is the backend: made in the background from an LMDB
 * view while writes go on. Until it is ready raft is told "temporarily
 * unavailable" and asks again on a later heartbeat.
 */
export class ServerRaftStorage extends MemoryStorage {
  private backend: Backend | undefined;
  private prepared: Snapshot | undefined;
  private inPreparation: Promise<void> | undefined;
  private releaseTimer: NodeJS.Timeout | undefined;
  private onError: (error: Error) => void = () => {};

  /** Sets the backend snapshots are made of, once the server that applies entries exists. */
  setSnapshotSource(backend: Backend, onError: (error: Error) => void): void {
    this.backend = backend;
    this.onError = onError;
  }

  override snapshot(): Snapshot {
    const prepared = this.prepared;
    // A snapshot is of use while the log still holds the entries after it.
    if (prepared !== undefined && prepared.metadata.index >= this.firstIndex() - 1) return prepared;
    this.release();
    if (this.inPreparation === undefined && this.backend !== undefined) {
      this.inPreparation = this.prepare(this.backend).finally(() => (this.inPreparation = undefined));
    }
    throw ErrSnapshotTemporarilyUnavailable;
  }

  /**
   * True while a snapshot is being made: the log must not be compacted
   * meanwhile, or under heavy writes each snapshot could be of no use by the
   * time it is ready, and be made again and again.
   */
  get preparing(): boolean {
    return this.inPreparation !== undefined;
  }

  /** Makes no more snapshots, and waits for the one being made: before the backend closes. */
  async close(): Promise<void> {
    this.backend = undefined;
    await this.inPreparation;
    this.release();
  }

  private release(): void {
    clearTimeout(this.releaseTimer);
    this.prepared = undefined;
  }

  private async prepare(backend: Backend): Promise<void> {
    try {
      const view = await backend.view();
      try {
        this.prepared = await snapshotOfView(view);
      } finally {
        view.done();
      }
      this.releaseTimer = setTimeout(() => this.release(), preparedSnapshotKeptMs).unref();
    } catch (error) {
      if (error !== ErrSnapshotTemporarilyUnavailable) this.onError(error instanceof Error ? error : new Error(String(error)));
    }
  }
}
