import { mkdirSync, renameSync, rmSync, statSync } from "node:fs";
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
  /** Commits without fsync (--unsafe-no-fsync, for tests): a crash of the machine can lose them. */
  unsafeNoFsync?: boolean;
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
  private readonly buckets: ReadonlyMap<BucketName, Database<Buffer, Buffer>>;

  constructor(
    buckets: ReadonlyMap<BucketName, Database<Buffer, Buffer>>,
    private readonly transaction: Transaction,
    private readonly onDone: () => void = () => {},
  ) {
    // The buckets of the environment the transaction reads, whatever a defragmentation swaps in meanwhile.
    this.buckets = new Map(buckets);
  }

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
    this.onDone();
  }
}

/** How a defragmentation went: the file's size before and after, and how long LMDB commits were held for the swap. */
export interface DefragmentResult {
  sizeBeforeBytes: number;
  sizeAfterBytes: number;
  commitsHeldMs: number;
}

/** Rounds of catching the copy up with the writes made while it was taken, before commits are held for the last one. */
const defragmentCatchUpRoundsMax = 8;
/** Writes left to replay below which the last round (commits held) begins. */
const defragmentFinalWritesMax = 1_000;

function openEnvironment(path: string, mapSizeBytes: number, unsafeNoFsync = false): { root: RootDatabase<Buffer, Buffer>; buckets: Map<BucketName, Database<Buffer, Buffer>> } {
  const root = open<Buffer, Buffer>({
    path,
    maxDbs: 16,
    mapSize: mapSizeBytes,
    encoding: "binary",
    keyEncoding: "binary",
    compression: false,
    cache: false,
    noSync: unsafeNoFsync,
  });
  const buckets = new Map<BucketName, Database<Buffer, Buffer>>();
  for (const name of bucketNames) buckets.set(name, root.openDB<Buffer, Buffer>({ name, encoding: "binary", keyEncoding: "binary", compression: false, cache: false }));
  return { root, buckets };
}

/** Hands writes to an LMDB environment as one transaction; resolves when it is committed. */
function applyWrites(buckets: ReadonlyMap<BucketName, Database<Buffer, Buffer>>, writes: readonly PendingWrite[]): Promise<unknown> {
  let committed: Promise<unknown> = Promise.resolve();
  for (const write of writes) {
    const bucket = buckets.get(write.bucket)!;
    committed = write.value === undefined ? bucket.remove(write.key) : bucket.put(write.key, write.value);
  }
  return committed;
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
  private root: RootDatabase<Buffer, Buffer>;
  private buckets: Map<BucketName, Database<Buffer, Buffer>>;
  /** Views open on each environment: an environment replaced by a defragmentation closes once its views are done. */
  private readonly openViews = new Map<RootDatabase<Buffer, Buffer>, number>();
  /** While a defragmentation copies: every write handed to LMDB since it began, to replay on the copy. */
  private journal: PendingWrite[] | undefined;
  /** While a defragmentation swaps environments: writes stay queued (and readable) instead of going to LMDB. */
  private commitsHeld = false;
  private defragmentation: Promise<DefragmentResult> | undefined;
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
    const { root, buckets } = openEnvironment(options.path, options.mapSizeBytes, options.unsafeNoFsync);
    this.root = root;
    this.buckets = buckets;
    for (const name of bucketNames) this.buffer.set(name, new Map());
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
    if (this.commitsHeld) return;
    const writes = this.queued;
    if (writes.length === 0) return;
    this.queued = [];
    const started = performance.now();
    const committed = applyWrites(this.buckets, writes);
    this.journal?.push(...writes);
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
    const root = this.root;
    this.openViews.set(root, (this.openViews.get(root) ?? 0) + 1);
    return new BackendView(this.buckets, root.useReadTransaction(), () => this.openViews.set(root, this.openViews.get(root)! - 1));
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
    await this.defragmentation?.catch(() => undefined);
    this.commitQueued();
    await this.lastCommit;
    await this.root.close();
  }

  /**
   * Gives back the space compaction freed: LMDB's compacting copy of the
   * environment is made on a worker thread while writes go on, the writes
   * made meanwhile are replayed on the copy, and the copy takes the
   * original's place. Requests are never blocked: only LMDB commits are held
   * (writes stay buffered and readable) while the last few writes are
   * replayed and the environments are swapped.
   */
  defragment(): Promise<DefragmentResult> {
    this.defragmentation ??= this.runDefragmentation().finally(() => (this.defragmentation = undefined));
    return this.defragmentation;
  }

  private async runDefragmentation(): Promise<DefragmentResult> {
    const sizeBeforeBytes = this.sizeBytes();
    // No dot in the name: lmdb takes a path with an extension for a file, not a directory.
    const copyPath = `${this.options.path}-defrag`;
    rmSync(copyPath, { recursive: true, force: true });
    mkdirSync(copyPath, { recursive: true });
    await this.flushed();
    this.journal = [];
    let copy: ReturnType<typeof openEnvironment> | undefined;
    let commitsHeldMs = 0;
    try {
      await this.root.backup(copyPath, true);
      copy = openEnvironment(copyPath, this.options.mapSizeBytes, this.options.unsafeNoFsync);
      for (let round = 0; round < defragmentCatchUpRoundsMax && this.journal.length > defragmentFinalWritesMax; round++) {
        const writes = this.journal;
        this.journal = [];
        await applyWrites(copy.buckets, writes);
      }
      const heldAt = performance.now();
      this.commitsHeld = true;
      await this.lastCommit;
      if (this.failure !== undefined) throw this.failure;
      await applyWrites(copy.buckets, this.journal);
      await copy.root.flushed;
      const old = this.root;
      this.root = copy.root;
      this.buckets = copy.buckets;
      this.journal = undefined;
      this.commitsHeld = false;
      commitsHeldMs = performance.now() - heldAt;
      this.commitQueued();
      copy = undefined;
      while ((this.openViews.get(old) ?? 0) > 0) await new Promise((resolve) => setTimeout(resolve, 10));
      this.openViews.delete(old);
      await old.close();
      // The copy's file takes the original's name; the open environment keeps its file.
      renameSync(join(copyPath, "data.mdb"), join(this.options.path, "data.mdb"));
    } finally {
      this.journal = undefined;
      if (this.commitsHeld) {
        this.commitsHeld = false;
        this.commitQueued();
      }
      await copy?.root.close();
    }
    rmSync(copyPath, { recursive: true, force: true });
    this.fileBytes = undefined;
    this.inUseBytes = undefined;
    return { sizeBeforeBytes, sizeAfterBytes: this.sizeBytes(), commitsHeldMs };
  }

  private bucket(name: BucketName): Database<Buffer, Buffer> {
    const bucket = this.buckets.get(name);
    if (bucket === undefined) throw new Error(`unknown bucket ${name}`);
    return bucket;
  }
}
