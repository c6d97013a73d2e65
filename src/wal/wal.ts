import { closeSync, constants, fstatSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, unlinkSync, write, writeSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { decodeRecord, encodeRecord, recordHeaderBytes, type WalRecord } from "./record.js";

const writeAsync = promisify(write);
/** Segments are written with O_DSYNC: one durable write per batch, no separate fdatasync. */
const writeDurably = constants.O_WRONLY | constants.O_CREAT | constants.O_DSYNC;

/** Limits of the WAL, kept in one place. */
export const walLimits = {
  /** A segment is closed and a new one started past this size. */
  segmentBytesMax: 64 * 1024 * 1024,
  /**
   * An open segment is grown ahead of its records by this much, with zeros, so
   * that appending does not change the file's size: a durable write that grows
   * a file must also wait for the file system to log the new size.
   */
  preallocationBytes: 4 * 1024 * 1024,
} as const;

export class WalCorruptError extends Error {
  constructor(
    readonly file: string,
    readonly offset: number,
    reason: string,
  ) {
    super(`wal: corrupt record in ${file} at offset ${offset}: ${reason}`);
    this.name = "WalCorruptError";
  }
}

interface Segment {
  sequence: number;
  name: string;
}

/**
 * The write-ahead log: records appended to numbered segment files
 * (`0000000000000001.wal`, ...), each batch written with one durable (O_DSYNC)
 * write before `append` resolves. Concurrent appends while
 * a sync is in flight form the next batch (group commit).
 *
 * While open, the segment being written is preallocated ahead of its records
 * with zeros; closing it cuts the file back to its records. After a crash, a
 * header of zeros marks the end of the records.
 *
 * On open, a torn record at the very end of the last segment (a write the crash
 * interrupted) is cut off; a bad record anywhere else is corruption, reported
 * with its file and offset.
 */
export class Wal {
  private fd: number;
  /** Bytes of records in the segment being written: where the next batch goes. */
  private segmentBytes: number;
  /** Size of that segment's file, records and zeros ahead of them. */
  private allocatedBytes = 0;
  private pending: Buffer[] = [];
  private pendingWaiters: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];
  private flushing = false;
  private failed: Error | undefined;

  /** Open flags of segments: durable writes, unless fsync is turned off (--unsafe-no-fsync, for tests). */
  private readonly writeFlags: number;

  private constructor(
    readonly directory: string,
    private segments: Segment[],
    private readonly unsafeNoFsync: boolean,
  ) {
    const last = segments[segments.length - 1]!;
    this.writeFlags = unsafeNoFsync ? constants.O_WRONLY | constants.O_CREAT : writeDurably;
    this.fd = openSync(join(directory, last.name), this.writeFlags);
    this.segmentBytes = 0;
  }

  /** Opens (creating if needed) the WAL in `directory` and returns every record in it. */
  static open(directory: string, options: { unsafeNoFsync?: boolean } = {}): { wal: Wal; records: WalRecord[] } {
    mkdirSync(directory, { recursive: true });
    const segments = listSegments(directory);
    const records: WalRecord[] = [];
    let lastValidEnd = 0;
    segments.forEach((segment, position) => {
      const path = join(directory, segment.name);
      const bytes = readFileSync(path);
      const validEnd = readSegment(path, bytes, position === segments.length - 1, records);
      lastValidEnd = validEnd;
      if (validEnd < bytes.length && !isZero(bytes, validEnd)) {
        const fd = openSync(path, "r+");
        ftruncateSync(fd, validEnd);
        fsyncSync(fd);
        closeSync(fd);
      }
    });
    if (segments.length === 0) {
      const first = { sequence: 1, name: segmentName(1) };
      closeSync(openSync(join(directory, first.name), "a"));
      syncDirectory(directory);
      segments.push(first);
    }
    const wal = new Wal(directory, segments, options.unsafeNoFsync === true);
    wal.segmentBytes = lastValidEnd;
    wal.allocatedBytes = fstatSync(wal.fd).size;
    return { wal, records };
  }

  /** Told the duration of each durable write (etcd's WAL fsync) and its size, for the metrics. */
  onSyncedWrite: ((seconds: number, bytes: number) => void) | undefined;

  /** Appends `records`; resolves once they, and every record before them, are on disk. */
  append(records: WalRecord[]): Promise<void> {
    if (this.failed !== undefined) return Promise.reject(this.failed);
    for (const record of records) this.pending.push(encodeRecord(record));
    const done = new Promise<void>((resolve, reject) => this.pendingWaiters.push({ resolve, reject }));
    if (!this.flushing) void this.flush();
    return done;
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    while (this.pending.length > 0 && this.failed === undefined) {
      const batch = Buffer.concat(this.pending);
      const waiters = this.pendingWaiters;
      this.pending = [];
      this.pendingWaiters = [];
      try {
        if (this.segmentBytes > 0 && this.segmentBytes + batch.length > walLimits.segmentBytesMax) this.startSegment();
        if (this.segmentBytes + batch.length > this.allocatedBytes) await this.preallocate(this.segmentBytes + batch.length);
        // The segment is open with O_DSYNC: a write returns once its data is on disk.
        const started = performance.now();
        await writeFully(this.fd, batch, this.segmentBytes);
        this.onSyncedWrite?.((performance.now() - started) / 1000, batch.length);
        this.segmentBytes += batch.length;
        for (const waiter of waiters) waiter.resolve();
      } catch (error) {
        // A storage error is never swallowed: this WAL accepts nothing more.
        this.failed = error instanceof Error ? error : new Error(String(error));
        for (const waiter of [...waiters, ...this.pendingWaiters]) waiter.reject(this.failed);
        this.pendingWaiters = [];
      }
    }
    this.flushing = false;
  }

  /** Grows the segment's file with zeros to cover at least `bytes`. */
  private async preallocate(bytes: number): Promise<void> {
    const target = Math.max(bytes, this.allocatedBytes + walLimits.preallocationBytes);
    await writeFully(this.fd, Buffer.alloc(target - this.allocatedBytes), this.allocatedBytes);
    this.allocatedBytes = target;
  }

  private sync(): void {
    if (!this.unsafeNoFsync) fsyncSync(this.fd);
  }

  private syncDirectory(): void {
    if (!this.unsafeNoFsync) syncDirectory(this.directory);
  }

  /** Cuts the segment being written back to its records and closes it. */
  private closeSegment(): void {
    ftruncateSync(this.fd, this.segmentBytes);
    this.sync();
    closeSync(this.fd);
  }

  private startSegment(): void {
    this.closeSegment();
    const sequence = this.segments[this.segments.length - 1]!.sequence + 1;
    const segment = { sequence, name: segmentName(sequence) };
    this.fd = openSync(join(this.directory, segment.name), this.writeFlags);
    this.syncDirectory();
    this.segments.push(segment);
    this.segmentBytes = 0;
    this.allocatedBytes = 0;
  }

  /** Number of closed segments (every segment but the one being written). */
  get closedSegments(): number {
    return this.segments.length - 1;
  }

  /**
   * Closes the segment being written and starts a new one holding
   * `firstRecords` (what a restart needs once the older segments are gone; a
   * function is called once the records appended before the call are written),
   * durable before this resolves; later appends go to it. Returns the new
   * segment's sequence number, for `purgeBefore`.
   */
  async rotate(firstRecords: WalRecord[] | (() => WalRecord[])): Promise<number> {
    // The check and the rotation run with no await between them: a flush
    // starting in between would write to the old segment's file descriptor.
    do await this.waitForFlush();
    while (this.flushing);
    this.startSegment();
    // A function is called only now, when every record appended before is written.
    const records = typeof firstRecords === "function" ? firstRecords() : firstRecords;
    const first = Buffer.concat(records.map(encodeRecord));
    let written = 0;
    while (written < first.length) written += writeSync(this.fd, first, written, first.length - written, written);
    this.sync();
    this.segmentBytes = first.length;
    this.allocatedBytes = first.length;
    return this.segments[this.segments.length - 1]!.sequence;
  }

  /**
   * Deletes segments older than `sequence`, oldest first, while more than
   * `keep` segments remain (`keep` 0 deletes them all). The caller has made
   * their records redundant first (for the member: applied, and durable in
   * the backend).
   */
  purgeBefore(sequence: number, keep = 0): void {
    const old = this.segments.filter((segment) => segment.sequence < sequence).slice(0, Math.max(0, this.segments.length - keep));
    if (old.length === 0) return;
    for (const segment of old) unlinkSync(join(this.directory, segment.name));
    this.syncDirectory();
    this.segments = this.segments.slice(old.length);
  }

  /** `rotate`, then `purgeBefore` the new segment: for a caller whose records are all redundant now. */
  async rotateAndPurge(firstRecords: WalRecord[]): Promise<void> {
    this.purgeBefore(await this.rotate(firstRecords));
  }

  /**
   * Waits until no batch is being written. It resolves in a later turn, and
   * a flush may have started by then: callers check `flushing` again in the
   * same synchronous run as what they do (see `rotate`).
   */
  private async waitForFlush(): Promise<void> {
    while (this.flushing) await new Promise((resolve) => setImmediate(resolve));
    if (this.failed !== undefined) throw this.failed;
  }

  async close(): Promise<void> {
    do await this.waitForFlush();
    while (this.flushing);
    this.closeSegment();
  }
}

function readSegment(path: string, bytes: Buffer, isLastSegment: boolean, records: WalRecord[]): number {
  let offset = 0;
  while (offset < bytes.length) {
    // Zeros from here to the end: preallocated space a crash left behind.
    if (isZero(bytes, offset)) return offset;
    const result = decodeRecord(bytes, offset);
    if (result.kind === "record") {
      records.push({ type: result.record.type, payload: Buffer.from(result.record.payload) });
      offset = result.next;
      continue;
    }
    // A crash can tear only the last write: a bad record is a torn tail when it
    // is in the last segment and no valid record follows it; otherwise it is
    // corruption, even when its damaged length points past the end of the file.
    if (isLastSegment && !validRecordAfter(bytes, offset)) return offset;
    throw new WalCorruptError(path, offset, result.kind === "incomplete" ? "truncated record" : result.reason);
  }
  return offset;
}

function validRecordAfter(bytes: Buffer, offset: number): boolean {
  // A record starts with a non-zero byte somewhere in its header, so none starts
  // in the zeros after the last non-zero byte (preallocated space): skip them.
  let lastNonZero = bytes.length - 1;
  while (lastNonZero > offset && bytes[lastNonZero] === 0) lastNonZero--;
  for (let candidate = offset + 1; candidate <= lastNonZero && candidate + recordHeaderBytes <= bytes.length; candidate++) {
    if (decodeRecord(bytes, candidate).kind === "record") return true;
  }
  return false;
}

/** True when every byte from `offset` on is zero. */
function isZero(bytes: Buffer, offset: number): boolean {
  for (let index = offset; index < bytes.length; index++) if (bytes[index] !== 0) return false;
  return true;
}

async function writeFully(fd: number, bytes: Buffer, position: number): Promise<void> {
  let written = 0;
  while (written < bytes.length) {
    const { bytesWritten } = await writeAsync(fd, bytes, written, bytes.length - written, position + written);
    written += bytesWritten;
  }
}

function listSegments(directory: string): Segment[] {
  return readdirSync(directory)
    .filter((name) => /^[0-9a-f]{16}\.wal$/.test(name))
    .sort()
    .map((name) => ({ sequence: parseInt(name.slice(0, 16), 16), name }));
}

function segmentName(sequence: number): string {
  return `${sequence.toString(16).padStart(16, "0")}.wal`;
}

function syncDirectory(directory: string): void {
  const fd = openSync(directory, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
