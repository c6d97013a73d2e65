import { statSync } from "node:fs";
import { join } from "node:path";
import { open, type Database, type RootDatabase, type Transaction } from "lmdb";

/** The buckets of the backend, as in etcd's bbolt file. */
export type BucketName = "key" | "meta" | "lease" | "alarm" | "members" | "members_removed" | "auth" | "authUsers" | "authRoles";
export const bucketNames: readonly BucketName[] = ["key", "meta", "lease", "alarm", "members", "members_removed", "auth", "authUsers", "authRoles"];

export interface BackendOptions {
  /** Directory of the LMDB environment (it holds data.mdb and lock.mdb). */
  path: string;
  /** Address space reserved for the map; the file grows within it. */
  mapSizeBytes: number;
  /** Longest time buffered writes wait before LMDB commits them (etcd's --backend-batch-interval). */
  batchIntervalMs?: number;
  /** Buffered writes that make LMDB commit at once (etcd's --backend-batch-limit). */
  batchLimit?: number;
}

/** etcd's defaults for backend commits: every 100 ms or 10,000 writes, whichever comes first. */
export const backendDefaults = { batchIntervalMs: 100, batchLimit: 10_000 } as const;

/** What reads a single record: the backend, or a view of it. */
export interface BackendReader {
  get(bucket: BucketName, key: Buffer): Buffer | undefined;
}

/**
 * What LMDB held when the view was taken, in one read transaction that later
 * commits do not change; it holds LMDB's old pages until `done`. Each LMDB
 * commit holds whole write transactions, so a view is the state at one
 * applied index (the one its meta bucket records).
 */
export class BackendView implements BackendReader {
  constructor(
    private readonly buckets: ReadonlyMap<BucketName, Database<Buffer, Buffer>>,
    private readonly transaction: Transaction,
  ) {}

  get(bucket: BucketName, key: Buffer): Buffer | undefined {
    const value = this.buckets.get(bucket)!.get(key, { transaction: this.transaction });
    return value === undefined ? undefined : Buffer.from(value);
  }

  /** The records of `bucket` in key order; the iteration may be spread over several turns of the event loop. */
  *records(bucket: BucketName): Generator<{ key: Buffer; value: Buffer }> {
    for (const { key, value } of this.buckets.get(bucket)!.getRange({ transaction: this.transaction })) {
      yield { key: Buffer.from(key), value: Buffer.from(value) };
    }
  }

  done(): void {
    this.transaction.done();
  }
}

/** A write not yet committed to LMDB; `value` undefined is a delete. */
interface PendingWrite {
  bucket: BucketName;
  key: Buffer;
  value: Buffer | undefined;
}

/**
 * The transactional B+tree store under the MVCC layer: one LMDB environment
 * with a named database per bucket.
 *
 * Writes work as etcd's batched backend does. A `write` body's changes go to an
 * in-memory buffer that reads consult first, so they are visible at once. Every
 * batch interval (or sooner, past the batch limit) the buffered writes are
 * handed to LMDB as one asynchronous transaction, committed and fsynced off the
 * main thread, and leave the buffer once LMDB has them. Each transaction carries the applied index of its batch, so LMDB
 * is always a consistent prefix of the log; acknowledged writes were already
 * made durable by the WAL, which replays whatever a crash kept from LMDB.
 */
export class Backend implements BackendReader {
  private readonly root: RootDatabase<Buffer, Buffer>;
  private readonly buckets = new Map<BucketName, Database<Buffer, Buffer>>();
  /** Committed by `write` but not yet by LMDB: bucket → key (latin1) → write. */
  private readonly buffer = new Map<BucketName, Map<string, PendingWrite>>();
  /** The body being run by `write`, with its writes so far. */
  private transaction: Map<string, PendingWrite> | undefined;
  private lastCommit: Promise<unknown> = Promise.resolve();
  /** Writes of finished transactions not yet handed to LMDB. */
  private queued: PendingWrite[] = [];
  private batchTimer: NodeJS.Timeout | undefined;
  private failure: Error | undefined;
  /** Size of the data file, and of its pages in use, read again after commits. */
  private fileBytes: number | undefined;
  private inUseBytes: number | undefined;

  constructor(private readonly options: BackendOptions) {
    this.root = open<Buffer, Buffer>({
      path: options.path,
      maxDbs: 16,
      mapSize: options.mapSizeBytes,
      encoding: "binary",
      keyEncoding: "binary",
      compression: false,
      cache: false,
    });
    for (const name of bucketNames) {
      this.buckets.set(name, this.root.openDB<Buffer, Buffer>({ name, encoding: "binary", keyEncoding: "binary", compression: false, cache: false }));
      this.buffer.set(name, new Map());
    }
  }

  /**
   * Runs `body` as one transaction: reads inside it see its own writes; if it
   * throws, none of its writes happen. Nested calls join the outer transaction.
   */
  write<T>(body: () => T): T {
    if (this.failure !== undefined) throw this.failure;
    if (this.transaction !== undefined) return body();
    const transaction = new Map<string, PendingWrite>();
    this.transaction = transaction;
    let result: T;
    try {
      result = body();
    } finally {
      this.transaction = undefined;
    }
    this.commit([...transaction.values()]);
    return result;
  }

  /** Buffers a finished transaction's writes; LMDB commits them with others, on the batch interval or limit. */
  private commit(writes: PendingWrite[]): void {
    if (writes.length === 0) return;
    for (const write of writes) {
      this.buffer.get(write.bucket)!.set(write.key.toString("latin1"), write);
      this.queued.push(write);
    }
    if (this.queued.length >= (this.options.batchLimit ?? backendDefaults.batchLimit)) this.commitQueued();
    else this.batchTimer ??= setTimeout(() => this.commitQueued(), this.options.batchIntervalMs ?? backendDefaults.batchIntervalMs);
  }

  /** Told the duration of each LMDB commit, fsync included (etcd's backend commit), for the metrics. */
  onCommit: ((seconds: number) => void) | undefined;

  /** Hands every queued write to LMDB: issued in one event turn, they become one LMDB transaction. */
  private commitQueued(): void {
    clearTimeout(this.batchTimer);
    this.batchTimer = undefined;
    const writes = this.queued;
    if (writes.length === 0) return;
    this.queued = [];
    let committed: Promise<unknown> = Promise.resolve();
    const started = performance.now();
    for (const write of writes) {
      const bucket = this.bucket(write.bucket);
      committed = write.value === undefined ? bucket.remove(write.key) : bucket.put(write.key, write.value);
    }
    this.fileBytes = undefined;
    this.lastCommit = committed.then(
      () => {
        this.onCommit?.((performance.now() - started) / 1000);
        for (const write of writes) {
          const pending = this.buffer.get(write.bucket)!;
          const key = write.key.toString("latin1");
          if (pending.get(key) === write) pending.delete(key);
        }
        this.fileBytes = undefined;
        this.inUseBytes = undefined;
      },
      (error: unknown) => {
        // A storage error is never swallowed: the backend accepts no more writes.
        this.failure = error instanceof Error ? error : new Error(String(error));
      },
    );
  }

  get(bucket: BucketName, key: Buffer): Buffer | undefined {
    const pending = this.pendingWrite(bucket, key);
    if (pending !== undefined) return pending.value;
    return this.bucket(bucket).getBinary(key) ?? undefined;
  }

  private pendingWrite(bucket: BucketName, key: Buffer): PendingWrite | undefined {
    const name = key.toString("latin1");
    return this.transaction?.get(`${bucket}\0${name}`) ?? this.buffer.get(bucket)!.get(name);
  }

  put(bucket: BucketName, key: Buffer, value: Uint8Array): void {
    this.record({ bucket, key, value: Buffer.from(value.buffer, value.byteOffset, value.byteLength) });
  }

  delete(bucket: BucketName, key: Buffer): void {
    this.record({ bucket, key, value: undefined });
  }

  private record(write: PendingWrite): void {
    if (this.transaction === undefined) throw new Error("backend write outside a write transaction");
    this.transaction.set(`${write.bucket}\0${write.key.toString("latin1")}`, write);
  }

  /**
   * Records of `bucket` in key order within [start, end) (end undefined: to the
   * last), at most `limit`, as LMDB holds them: call after `flushed()` when
   * recent writes matter.
   */
  range(bucket: BucketName, start: Buffer | undefined, end: Buffer | undefined, limit?: number): Array<{ key: Buffer; value: Buffer }> {
    const result: Array<{ key: Buffer; value: Buffer }> = [];
    const options: { start?: Buffer; end?: Buffer; limit?: number } = {};
    if (start !== undefined) options.start = start;
    if (end !== undefined) options.end = end;
    if (limit !== undefined) options.limit = limit;
    for (const { key, value } of this.bucket(bucket).getRange(options)) {
      result.push({ key: Buffer.from(key), value: Buffer.from(value) });
    }
    return result;
  }

  /** Visits every record of `bucket` in key order as LMDB holds it (see `range`). */
  forEach(bucket: BucketName, visit: (key: Buffer, value: Buffer) => void): void {
    for (const { key, value } of this.bucket(bucket).getRange({})) visit(key, value);
  }

  /**
   * Every record of `bucket` as of the last write transaction, buffered writes
   * included. Synchronous, so a caller reading several buckets in one turn of
   * the event loop sees one consistent state.
   */
  records(bucket: BucketName): Array<{ key: Buffer; value: Buffer }> {
    const pending = this.buffer.get(bucket)!;
    const result: Array<{ key: Buffer; value: Buffer }> = [];
    for (const { key, value } of this.bucket(bucket).getRange({})) {
      const copy = Buffer.from(key);
      if (!pending.has(copy.toString("latin1"))) result.push({ key: copy, value: Buffer.from(value) });
    }
    for (const write of pending.values()) if (write.value !== undefined) result.push({ key: write.key, value: write.value });
    return result;
  }

  /** A view of what LMDB holds once every write transaction so far is committed to it. */
  async view(): Promise<BackendView> {
    await this.flushed();
    return new BackendView(this.buckets, this.root.useReadTransaction());
  }

  /** Resolves when every write transaction so far is in LMDB and on disk. */
  async flushed(): Promise<void> {
    this.commitQueued();
    await this.lastCommit;
    if (this.failure !== undefined) throw this.failure;
    await this.root.flushed;
  }

  /** Size of the data file. */
  sizeBytes(): number {
    this.fileBytes ??= statSync(join(this.options.path, "data.mdb")).size;
    return this.fileBytes;
  }

  /**
   * Bytes of the pages holding data, as of the last LMDB commit: what the
   * backend quota is measured against. Unlike the file, it shrinks when
   * compaction frees pages.
   */
  sizeInUseBytes(): number {
    if (this.inUseBytes === undefined) {
      let usedPages = 0;
      for (const bucket of this.buckets.values()) {
        const stats = bucket.getStats() as { treeBranchPageCount?: number; treeLeafPageCount?: number; overflowPages?: number };
        usedPages += (stats.treeBranchPageCount ?? 0) + (stats.treeLeafPageCount ?? 0) + (stats.overflowPages ?? 0);
      }
      const pageSize = (this.root.getStats() as { pageSize?: number }).pageSize ?? 4096;
      // Two meta pages and the root tree come on top of the buckets' pages.
      this.inUseBytes = Math.min(this.sizeBytes(), (usedPages + 3) * pageSize);
    }
    return this.inUseBytes;
  }

  /** Size of the backend file and the part of it holding live pages. */
  size(): { sizeBytes: number; sizeInUseBytes: number } {
    return { sizeBytes: this.sizeBytes(), sizeInUseBytes: this.sizeInUseBytes() };
  }

  async close(): Promise<void> {
    this.commitQueued();
    await this.lastCommit;
    await this.root.close();
  }

  private bucket(name: BucketName): Database<Buffer, Buffer> {
    const bucket = this.buckets.get(name);
    if (bucket === undefined) throw new Error(`unknown bucket ${name}`);
    return bucket;
  }
}
