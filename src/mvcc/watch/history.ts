import type { Backend } from "../backend.js";
import { decodeKeyValue } from "../key-value.js";
import { bytesToRevision, isTombstoneKey, mainRevisionPrefix } from "../revision.js";
import type { Change } from "../store.js";

/** Changes of consecutive revisions, and the last revision they cover completely. */
export interface HistorySlice {
  changes: Change[];
  through: number;
}

/**
 * Reads the changes of revisions [from, to] from the backend, in revision order,
 * stopping at a revision boundary after about `recordsMax` records. LMDB holds
 * only what was flushed: the caller awaits `backend.flushed()` after `to` was
 * committed. A revision is never split, however many changes it has.
 */
export function readHistory(backend: Backend, from: number, to: number, recordsMax: number): HistorySlice {
  if (from > to) return { changes: [], through: to };
  const records = backend.range("key", mainRevisionPrefix(from), mainRevisionPrefix(to + 1), recordsMax + 1);
  if (records.length <= recordsMax) return { changes: records.map(toChange), through: to };
  const firstLeftOut = bytesToRevision(records[recordsMax]!.key).main;
  const complete = records.filter((record) => bytesToRevision(record.key).main < firstLeftOut);
  if (complete.length > 0) return { changes: complete.map(toChange), through: firstLeftOut - 1 };
  // One revision (a large delete range) has more records than a round reads: read it whole.
  const whole = backend.range("key", mainRevisionPrefix(from), mainRevisionPrefix(from + 1));
  return { changes: whole.map(toChange), through: from };
}

function toChange(record: { key: Buffer; value: Buffer }): Change {
  const revision = bytesToRevision(record.key);
  const kv = decodeKeyValue(record.value);
  if (!isTombstoneKey(record.key)) return { kv, deleted: false };
  return { kv: { ...kv, modRevision: revision.main }, deleted: true };
}

interface RecentRevision {
  revision: number;
  changes: readonly Change[];
  bytes: number;
}

/**
 * The changes of the last few revisions, kept in memory as they are committed,
 * so that a watcher a little behind catches up without a backend scan.
 */
export class RecentHistory {
  private readonly revisions: RecentRevision[] = [];
  private head = 0;
  private bytes = 0;

  constructor(
    private readonly revisionsMax: number,
    private readonly bytesMax: number,
  ) {}

  add(changes: readonly Change[], revision: number): void {
    const newest = this.newestRevision();
    if (newest !== undefined && revision !== newest + 1) throw new Error(`recent history: revision ${revision} after ${newest}`);
    let bytes = 0;
    for (const change of changes) bytes += change.kv.key.length + change.kv.value.length;
    this.revisions.push({ revision, changes, bytes });
    this.bytes += bytes;
    while (this.length() > 1 && (this.length() > this.revisionsMax || this.bytes > this.bytesMax)) {
      this.bytes -= this.revisions[this.head]!.bytes;
      this.revisions[this.head++] = undefined as never;
    }
    if (this.head > this.revisionsMax) {
      this.revisions.splice(0, this.head);
      this.head = 0;
    }
  }

  /** Forgets everything held (the store was replaced by a snapshot). */
  clear(): void {
    this.revisions.length = 0;
    this.head = 0;
    this.bytes = 0;
  }

  /** The oldest revision held, or undefined when empty. */
  oldestRevision(): number | undefined {
    return this.length() === 0 ? undefined : this.revisions[this.head]!.revision;
  }

  /** True when every revision in [from, to] is held. */
  covers(from: number, to: number): boolean {
    const oldest = this.oldestRevision();
    const newest = this.newestRevision();
    if (from > to) return true;
    return oldest !== undefined && newest !== undefined && from >= oldest && to <= newest;
  }

  /** The changes of revisions [from, to], which `covers` must hold. */
  slice(from: number, to: number): Change[] {
    if (!this.covers(from, to)) throw new Error(`recent history does not hold ${from}..${to}`);
    const changes: Change[] = [];
    if (from > to) return changes;
    const start = this.head + (from - this.oldestRevision()!);
    for (let index = start; index < this.revisions.length; index++) {
      const entry = this.revisions[index]!;
      if (entry.revision > to) break;
      changes.push(...entry.changes);
    }
    return changes;
  }

  private length(): number {
    return this.revisions.length - this.head;
  }

  private newestRevision(): number | undefined {
    return this.length() === 0 ? undefined : this.revisions[this.revisions.length - 1]!.revision;
  }
}
