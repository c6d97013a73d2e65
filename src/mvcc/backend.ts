import { statSync } from "node:fs";
import { join } from "node:path";
import { open, type Database, type RootDatabase } from "lmdb";

/** The buckets of the backend, as in etcd's bbolt file. */
export type BucketName = "key" | "meta" | "lease" | "alarm" | "members" | "auth";
const bucketNames: readonly BucketName[] = ["key", "meta", "lease", "alarm", "members", "auth"];

export interface BackendOptions {
  /** Directory of the LMDB environment (it holds data.mdb and lock.mdb). */
  path: string;
  /** Address space reserved for the map; the file grows within it. */
  mapSizeBytes: number;
}

/**
 * The transactional B+tree store under the MVCC layer: one LMDB environment with
 * a named database per bucket. All writes of one apply batch go through a single
 * `write` call, one LMDB transaction, together with the applied index, so that a
 * restart never sees half a batch. Durability of acknowledged writes comes from
 * the WAL, which replays anything past the stored applied index.
 */
export class Backend {
  private readonly root: RootDatabase<Buffer, Buffer>;
  private readonly buckets = new Map<BucketName, Database<Buffer, Buffer>>();
  private writing = false;

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
    }
  }

  /** Runs `body` in one write transaction; reads inside it see its own writes. */
  write<T>(body: () => T): T {
    if (this.writing) return body();
    this.writing = true;
    try {
      return this.root.transactionSync(body);
    } finally {
      this.writing = false;
    }
  }

  get(bucket: BucketName, key: Buffer): Buffer | undefined {
    return this.bucket(bucket).getBinary(key) ?? undefined;
  }

  put(bucket: BucketName, key: Buffer, value: Uint8Array): void {
    this.assertWriting();
    this.bucket(bucket).putSync(key, Buffer.from(value.buffer, value.byteOffset, value.byteLength));
  }

  delete(bucket: BucketName, key: Buffer): void {
    this.assertWriting();
    this.bucket(bucket).removeSync(key);
  }

  /** Records of `bucket` in key order within [start, end) (end undefined: to the last), at most `limit`. */
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

  /** Visits every record of `bucket` in key order without copying the whole bucket. */
  forEach(bucket: BucketName, visit: (key: Buffer, value: Buffer) => void): void {
    for (const { key, value } of this.bucket(bucket).getRange({})) visit(key, value);
  }

  /** Size of the backend file and the part of it holding live pages. */
  size(): { sizeBytes: number; sizeInUseBytes: number } {
    const sizeBytes = statSync(join(this.options.path, "data.mdb")).size;
    let usedPages = 0;
    for (const bucket of this.buckets.values()) {
      const stats = bucket.getStats() as { treeBranchPageCount?: number; treeLeafPageCount?: number; overflowPages?: number; pageSize?: number };
      usedPages += (stats.treeBranchPageCount ?? 0) + (stats.treeLeafPageCount ?? 0) + (stats.overflowPages ?? 0);
    }
    const pageSize = (this.root.getStats() as { pageSize?: number }).pageSize ?? 4096;
    // Two meta pages and the root tree come on top of the buckets' pages.
    return { sizeBytes, sizeInUseBytes: Math.min(sizeBytes, (usedPages + 3) * pageSize) };
  }

  /** Resolves when every committed write transaction is on disk. */
  flushed(): Promise<unknown> {
    return this.root.flushed;
  }

  async close(): Promise<void> {
    await this.root.close();
  }

  private bucket(name: BucketName): Database<Buffer, Buffer> {
    const bucket = this.buckets.get(name);
    if (bucket === undefined) throw new Error(`unknown bucket ${name}`);
    return bucket;
  }

  private assertWriting(): void {
    if (!this.writing) throw new Error("backend write outside a write transaction");
  }
}
