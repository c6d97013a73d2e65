import type { Wal } from "../wal/wal.js";
import type { LogEntry, ReplicatedLog } from "./replicated-log.js";

/** WAL record types of the member's log. */
export const WalRecordType = {
  /** Member and cluster ids: 8 + 8 bytes, big-endian. */
  metadata: 1,
  /** term (8), index (8), then the entry's data. */
  entry: 2,
  /** The term a start of the member began: 8 bytes. */
  term: 3,
} as const;

export function encodeEntry(entry: LogEntry): Uint8Array {
  const payload = Buffer.allocUnsafe(16 + entry.data.length);
  payload.writeBigUInt64BE(BigInt(entry.term), 0);
  payload.writeBigUInt64BE(BigInt(entry.index), 8);
  payload.set(entry.data, 16);
  return payload;
}

export function decodeEntry(payload: Uint8Array): LogEntry {
  const bytes = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  return { term: Number(bytes.readBigUInt64BE(0)), index: Number(bytes.readBigUInt64BE(8)), data: bytes.subarray(16) };
}

/**
 * The log of a one-member cluster: the member is its own quorum, so an entry is
 * committed as soon as it is fsynced in the WAL. Proposals that arrive while a
 * write is in flight form the next batch: one write and one fsync per batch.
 */
export class SingleMemberLog implements ReplicatedLog {
  private pending: LogEntry[] = [];
  private writing = false;
  commitIndex: number;
  lastIndex: number;
  private closed = false;

  constructor(
    private readonly wal: Wal,
    readonly term: number,
    readonly leaderId: bigint,
    lastIndex: number,
    private readonly onCommitted: (entries: LogEntry[]) => void,
    private readonly onFailure: (error: Error) => void,
  ) {
    this.lastIndex = lastIndex;
    this.commitIndex = lastIndex;
  }

  propose(data: Uint8Array): void {
    if (this.closed) throw new Error("log closed");
    this.pending.push({ term: this.term, index: ++this.lastIndex, data });
    if (!this.writing) void this.writeBatches();
  }

  private async writeBatches(): Promise<void> {
    this.writing = true;
    while (this.pending.length > 0) {
      const batch = this.pending;
      this.pending = [];
      try {
        await this.wal.append(batch.map((entry) => ({ type: WalRecordType.entry, payload: encodeEntry(entry) })));
      } catch (error) {
        this.writing = false;
        this.onFailure(error as Error);
        return;
      }
      this.commitIndex = batch[batch.length - 1]!.index;
      this.onCommitted(batch);
    }
    this.writing = false;
  }

  /** A single member always leads; what it has applied is everything acknowledged. */
  readIndex(): Promise<number> {
    return Promise.resolve(this.commitIndex);
  }

  /** True while proposed entries are not yet committed. */
  get busy(): boolean {
    return this.writing || this.pending.length > 0;
  }

  async close(): Promise<void> {
    this.closed = true;
    while (this.busy) await new Promise((resolve) => setImmediate(resolve));
  }
}
