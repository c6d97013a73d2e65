import { crc32c } from "../pkg/crc32c.js";
import type { Backend, BackendReader } from "./backend.js";
import { ErrCompacted, ErrFutureRevision } from "./errors.js";
import { revisionKey } from "./key-index.js";
import { decodeKeyValue, encodeKeyValue, type KeyValue } from "./key-value.js";
import { keyToBytes } from "./keys.js";
import type { LeaseAttachments } from "./lessor.js";
import { bytesToRevision, isTombstoneKey, mainRevisionPrefix, revisionToBytes, type Revision } from "./revision.js";
import { TreeIndex } from "./tree-index.js";

export interface RangeOptions {
  /** At most this many key-values; 0 is no limit. */
  limit?: number;
  /** Read as of this revision; 0 or less is the current one. */
  revision?: number;
  countOnly?: boolean;
}

export interface RangeResult {
  kvs: KeyValue[];
  /** Keys in the range at that revision, regardless of the limit. */
  count: number;
  /** The store's current revision (not the one read at). */
  revision: number;
}

/** One change made by a write transaction, in order: what watchers will see. */
export interface Change {
  kv: KeyValue;
  deleted: boolean;
}

/** Receives the changes of one write transaction and its revision. */
export type ChangeObserver = (changes: readonly Change[], revision: number) => void;

/** Limits of the store, kept in one place. */
export const storeLimits = {
  /** Revisions removed from the backend per compaction step. */
  compactionBatchRecords: 1000,
} as const;

const metaConsistentIndex = Buffer.from("consistent_index");
const metaScheduledCompaction = Buffer.from("scheduledCompactRev");
const metaFinishedCompaction = Buffer.from("finishedCompactRev");

/** Index of the last log entry whose effects `reader` holds. */
export function consistentIndexOf(reader: BackendReader): number {
  const bytes = reader.get("meta", metaConsistentIndex);
  return bytes === undefined ? 0 : Number(bytes.readBigUInt64BE(0));
}

/**
 * The multi-version key-value store: every change makes a new revision, and any
 * revision since the last compaction can be read. Values live in the backend
 * under their revision; the in-memory tree index maps each key to its history.
 */
/** Operations counted as etcd's mvcc metrics count them: a txn is a write transaction of more than one operation. */
export interface OperationCounts {
  range: number;
  put: number;
  delete: number;
  txn: number;
}

export class KvStore {
  /** Read by the metrics when scraped; counting costs an increment. */
  readonly operations: OperationCounts = { range: 0, put: 0, delete: 0, txn: 0 };
  private index = new TreeIndex();
  /** The revision of the last committed write transaction; 1 for an empty store. */
  currentRevision = 1;
  /** Reads below this revision fail; -1 before the first compaction. */
  compactRevision = -1;
  private compactionRunning: Promise<void> = Promise.resolve();
  private observers: ChangeObserver[] = [];
  private restoreListeners: Array<() => void> = [];

  constructor(
    readonly backend: Backend,
    private readonly leases: LeaseAttachments,
    /** Records removed from the backend per compaction step (--experimental-compaction-batch-limit). */
    private readonly compactionBatchRecords: number = storeLimits.compactionBatchRecords,
  ) {
    this.restore();
  }

  get keyCount(): number {
    return this.index.size;
  }

  /** Keys not deleted (etcd's keys gauge); kept up to date by write transactions. */
  liveKeys = 0;

  /** Index of the last log entry whose effects are in the backend. */
  consistentIndex(): number {
    return consistentIndexOf(this.backend);
  }

  /** Must be called inside the backend write transaction of the entries applied. */
  setConsistentIndex(index: number): void {
    const bytes = Buffer.allocUnsafe(8);
    bytes.writeBigUInt64BE(BigInt(index));
    this.backend.put("meta", metaConsistentIndex, bytes);
  }

  /** Reads the store as it is now. */
  range(key: string, end: string | undefined, options: RangeOptions = {}): RangeResult {
    this.operations.range++;
    return this.rangeAt(key, end, options, this.currentRevision);
  }

  /**
   * Range against `currentRevision` as the newest readable revision; write
   * transactions pass their own, which includes their changes so far.
   */
  rangeAt(key: string, end: string | undefined, options: RangeOptions, currentRevision: number): RangeResult {
    let revision = options.revision ?? 0;
    if (revision > currentRevision) throw ErrFutureRevision;
    if (revision <= 0) revision = currentRevision;
    if (revision < this.compactRevision) throw ErrCompacted;
    if (options.countOnly) return { kvs: [], count: this.index.count(key, end, revision), revision: currentRevision };
    const limit = options.limit !== undefined && options.limit > 0 ? options.limit : Infinity;
    const kvs: KeyValue[] = [];
    let count = 0;
    this.index.range(key, end, revision, (_, at) => {
      if (count++ < limit) kvs.push(this.readRecord(at.modified));
      return true;
    });
    return { kvs, count, revision: currentRevision };
  }

  /** Starts a write transaction; the caller runs it inside `backend.write`. */
  write(): WriteTransaction {
    return new WriteTransaction(this, this.index, this.leases);
  }

  /**
   * Calls `observer` with the changes of every write transaction, in revision
   * order, right after the transaction ends. Returns a function that stops it.
   */
  observe(observer: ChangeObserver): () => void {
    this.observers.push(observer);
    return () => {
      this.observers = this.observers.filter((candidate) => candidate !== observer);
    };
  }

  /** Called by a write transaction that made changes. */
  commitRevision(revision: number, changes: Change[]): void {
    if (revision !== this.currentRevision + 1) throw new Error(`revision ${revision} after ${this.currentRevision}`);
    this.currentRevision = revision;
    for (const observer of this.observers) observer(changes, revision);
  }

  readRecord(revision: Revision): KeyValue {
    const bytes = this.backend.get("key", revisionToBytes(revision));
    if (bytes === undefined) throw new Error(`record ${revision.main}.${revision.sub} missing from the backend`);
    return decodeKeyValue(bytes);
  }

  /**
   * Compacts at `revision`: history before it becomes unreadable at once, and its
   * records leave the backend in small batches afterwards. Must run inside the
   * backend write transaction of the entry that asked for it. The promise settles
   * when the backend holds no compacted record.
   */
  compact(revision: number): Promise<void> {
    if (revision <= this.compactRevision) throw ErrCompacted;
    if (revision > this.currentRevision) throw ErrFutureRevision;
    this.compactRevision = revision;
    this.backend.put("meta", metaScheduledCompaction, revisionToBytes({ main: revision, sub: 0 }));
    const keep = this.index.compact(revision);
    const previous = this.compactionRunning;
    this.compactionRunning = previous.then(() => this.removeCompacted(revision, keep));
    return this.compactionRunning;
  }

  /** Waits for every compaction scheduled so far to finish. */
  compactionsDone(): Promise<void> {
    return this.compactionRunning;
  }

  private async removeCompacted(revision: number, keep: Set<string>): Promise<void> {
    // Scans read LMDB itself: first let every record at or below `revision` reach it.
    await this.backend.flushed();
    const end = mainRevisionPrefix(revision + 1);
    let start: Buffer | undefined;
    for (;;) {
      const finished = this.backend.write(() => {
        const records = this.backend.range("key", start, end, this.compactionBatchRecords);
        for (const { key } of records) {
          if (!keep.has(revisionKey(bytesToRevision(key)))) this.backend.delete("key", key);
        }
        if (records.length < this.compactionBatchRecords) {
          this.backend.put("meta", metaFinishedCompaction, revisionToBytes({ main: revision, sub: 0 }));
          return true;
        }
        const last = bytesToRevision(records[records.length - 1]!.key);
        start = revisionToBytes({ main: last.main, sub: last.sub + 1 });
        return false;
      });
      if (finished) return this.backend.flushed();
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /**
   * CRC-32C over the records of revisions up to `revision` that a compaction at
   * the current compact revision keeps: etcd's HashKV, equal on every member
   * holding the same history.
   */
  async hashByRevision(revision: number): Promise<{ hash: number; currentRevision: number; compactRevision: number }> {
    const { currentRevision, compactRevision } = this;
    if (revision > 0 && revision <= compactRevision) throw ErrCompacted;
    if (revision > 0 && revision > currentRevision) throw ErrFutureRevision;
    const atRevision = revision === 0 ? currentRevision : revision;
    const keep = this.index.keep(atRevision);
    // Every record up to atRevision is in LMDB once the writes so far are; later ones are skipped.
    await this.backend.flushed();
    let hash = crc32c(Buffer.from("key"));
    this.backend.forEach("key", (key, value) => {
      const record = bytesToRevision(key);
      if (record.main > atRevision) return;
      if (record.main <= compactRevision && keep.size > 0 && !keep.has(revisionKey(record))) return;
      hash = crc32c(value, crc32c(key, hash));
    });
    return { hash, currentRevision, compactRevision };
  }

  /**
   * Forgets the in-memory state and rebuilds it from the backend, after the
   * backend was replaced by a snapshot; then tells the restore listeners
   * (watchers must catch up from history).
   */
  reload(): void {
    this.index = new TreeIndex();
    this.currentRevision = 1;
    this.compactRevision = -1;
    this.restore();
    for (const listener of this.restoreListeners) listener();
  }

  /** Calls `listener` after every reload. */
  onRestore(listener: () => void): void {
    this.restoreListeners.push(listener);
  }

  /** Rebuilds the index from the backend and finishes an interrupted compaction. */
  private restore(): void {
    const keyLeases = new Map<string, bigint>();
    this.backend.forEach("key", (key, value) => {
      const revision = bytesToRevision(key);
      const kv = decodeKeyValue(value);
      const name = Buffer.from(kv.key).toString("latin1");
      const tombstone = isTombstoneKey(key);
      this.index.restore(name, revision, { tombstone, createRevision: kv.createRevision, version: kv.version });
      if (tombstone || kv.lease === 0n) keyLeases.delete(name);
      else keyLeases.set(name, kv.lease);
      this.currentRevision = Math.max(this.currentRevision, revision.main);
    });
    for (const [key, lease] of keyLeases) {
      if (this.leases.exists(lease)) this.leases.attach(lease, key);
    }
    this.liveKeys = this.index.count("", "", this.currentRevision);
    const finished = this.backend.get("meta", metaFinishedCompaction);
    const scheduled = this.backend.get("meta", metaScheduledCompaction);
    if (finished !== undefined) this.compactRevision = bytesToRevision(finished).main;
    if (scheduled !== undefined) {
      const scheduledRevision = bytesToRevision(scheduled).main;
      this.currentRevision = Math.max(this.currentRevision, scheduledRevision);
      if (scheduledRevision > this.compactRevision) {
        const keep = this.index.compact(scheduledRevision);
        this.compactRevision = scheduledRevision;
        this.compactionRunning = this.removeCompacted(scheduledRevision, keep);
      }
    }
  }
}

/**
 * The changes of one request: every put and delete gets revision
 * `{begin + 1, n}` where n counts the changes before it. Reads see the
 * transaction's own earlier changes.
 */
export class WriteTransaction {
  readonly beginRevision: number;
  readonly changes: Change[] = [];
  private readonly operations: OperationCounts = { range: 0, put: 0, delete: 0, txn: 0 };

  constructor(
    private readonly store: KvStore,
    private readonly index: TreeIndex,
    private readonly leases: LeaseAttachments,
  ) {
    this.beginRevision = store.currentRevision;
  }

  /** The newest revision this transaction can read. */
  get readRevision(): number {
    return this.changes.length > 0 ? this.beginRevision + 1 : this.beginRevision;
  }

  range(key: string, end: string | undefined, options: RangeOptions = {}): RangeResult {
    this.operations.range++;
    return this.store.rangeAt(key, end, options, this.readRevision);
  }

  /** Returns the revision of the put. */
  put(key: string, value: Uint8Array, lease: bigint): number {
    this.operations.put++;
    const main = this.beginRevision + 1;
    const revision = { main, sub: this.changes.length };
    const previous = this.index.get(key, main);
    let oldLease = 0n;
    if (previous !== undefined) oldLease = this.leases.leaseOf(key);
    const kv: KeyValue = {
      key: keyToBytes(key),
      createRevision: previous === undefined ? main : previous.created.main,
      modRevision: main,
      version: (previous?.version ?? 0) + 1,
      value,
      lease,
    };
    this.store.backend.put("key", revisionToBytes(revision), encodeKeyValue(kv));
    this.index.put(key, revision);
    if (previous === undefined) this.store.liveKeys++;
    this.changes.push({ kv, deleted: false });
    if (oldLease !== 0n) this.leases.detach(oldLease, key);
    if (lease !== 0n) this.leases.attach(lease, key);
    return main;
  }

  /** Deletes every live key of the range; returns how many and the revision to report. */
  deleteRange(key: string, end: string | undefined): { deleted: number; revision: number } {
    this.operations.delete++;
    const keys: string[] = [];
    this.index.range(key, end, this.readRevision, (liveKey) => {
      keys.push(liveKey);
      return true;
    });
    for (const liveKey of keys) this.delete(liveKey);
    const revision = keys.length > 0 || this.changes.length > 0 ? this.beginRevision + 1 : this.beginRevision;
    return { deleted: keys.length, revision };
  }

  private delete(key: string): void {
    const revision = { main: this.beginRevision + 1, sub: this.changes.length };
    const kv: KeyValue = { key: keyToBytes(key), createRevision: 0, modRevision: 0, version: 0, value: new Uint8Array(0), lease: 0n };
    this.store.backend.put("key", revisionToBytes(revision, true), encodeKeyValue(kv));
    if (!this.index.tombstone(key, revision)) throw new Error(`delete of ${key} that is not live`);
    this.store.liveKeys--;
    this.changes.push({ kv: { ...kv, modRevision: revision.main }, deleted: true });
    const lease = this.leases.leaseOf(key);
    if (lease !== 0n) this.leases.detach(lease, key);
  }

  /** Ends the transaction; returns its changes (empty when it only read). */
  end(): Change[] {
    const counts = this.store.operations;
    const { range, put, delete: deletes } = this.operations;
    if (range + put + deletes > 1) counts.txn++;
    counts.range += range;
    counts.put += put;
    counts.delete += deletes;
    if (this.changes.length > 0) this.store.commitRevision(this.beginRevision + 1, this.changes);
    return this.changes;
  }
}
