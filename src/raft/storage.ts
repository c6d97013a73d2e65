/**
 * Storage is the raft core's read view of what the application has made durable:
 * hard state, the log and the latest snapshot. The core never writes to it; the
 * application persists each Ready and then updates its Storage (for
 * MemoryStorage: setHardState, append, applySnapshot) before calling advance().
 *
 * Expected failures are thrown as the named errors ErrCompacted, ErrUnavailable
 * and ErrSnapshotTemporarilyUnavailable; the core handles them.
 */
import type { ConfState, Entry, HardState, Snapshot } from "./messages.js";
import { emptyConfState, emptyHardState, emptySnapshot, entryBytes, EntryType } from "./messages.js";
import { assert, ErrCompacted, ErrSnapOutOfDate, ErrUnavailable } from "./errors.js";

export interface InitialState {
  hardState: HardState;
  confState: ConfState;
}

export interface Storage {
  initialState(): InitialState;
  /**
   * Entries in [lo, hi), at most maxBytes in total but always at least one if
   * any is in range. Throws ErrCompacted if lo is compacted, ErrUnavailable if
   * hi - 1 is beyond lastIndex.
   */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /** Term of entry i, for i in [firstIndex - 1, lastIndex]; throws ErrCompacted / ErrUnavailable. */
  term(index: number): number;
  lastIndex(): number;
  /** Index of the first entry still available (the snapshot index + 1). */
  firstIndex(): number;
  /** The latest snapshot; may throw ErrSnapshotTemporarilyUnavailable. */
  snapshot(): Snapshot;
}

/** Takes entries from the front until maxBytes would be exceeded; always keeps the first. */
export function limitSize(entries: Entry[], maxBytes: number): Entry[] {
  if (entries.length === 0) return entries;
  let size = entryBytes(entries[0]!);
  let count = 1;
  for (; count < entries.length; count++) {
    size += entryBytes(entries[count]!);
    if (size > maxBytes) break;
  }
  return count === entries.length ? entries : entries.slice(0, count);
}

/**
 * An in-memory Storage. entries[0] is a placeholder holding the index and term
 * of the last compacted entry (or of the snapshot).
 */
export class MemoryStorage implements Storage {
  private hardState: HardState = emptyHardState();
  private currentSnapshot: Snapshot = emptySnapshot();
  private log: Entry[] = [{ term: 0, index: 0, type: EntryType.EntryNormal, data: new Uint8Array(0) }];

  initialState(): InitialState {
    return { hardState: { ...this.hardState }, confState: cloneConfState(this.currentSnapshot.metadata.confState) };
  }

  setHardState(state: HardState): void {
    this.hardState = { ...state };
  }

  hardStateSnapshot(): HardState {
    return { ...this.hardState };
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const offset = this.log[0]!.index;
    if (lo <= offset) throw ErrCompacted;
    if (hi > this.lastIndex() + 1) throw ErrUnavailable;
    assert(lo <= hi, `storage: invalid range [${lo}, ${hi})`);
    if (this.log.length === 1) throw ErrUnavailable;
    return limitSize(this.log.slice(lo - offset, hi - offset), maxBytes);
  }

  term(index: number): number {
    const offset = this.log[0]!.index;
    if (index < offset) throw ErrCompacted;
    if (index - offset >= this.log.length) throw ErrUnavailable;
    return this.log[index - offset]!.term;
  }

  lastIndex(): number {
    return this.log[0]!.index + this.log.length - 1;
  }

  firstIndex(): number {
    return this.log[0]!.index + 1;
  }

  snapshot(): Snapshot {
    return this.currentSnapshot;
  }

  /** Replaces everything with the snapshot; throws ErrSnapOutOfDate if it is older than the current one. */
  applySnapshot(snapshot: Snapshot): void {
    if (this.currentSnapshot.metadata.index >= snapshot.metadata.index) throw ErrSnapOutOfDate;
    this.currentSnapshot = snapshot;
    this.log = [{ term: snapshot.metadata.term, index: snapshot.metadata.index, type: EntryType.EntryNormal, data: new Uint8Array(0) }];
  }

  /**
   * Records a snapshot of the applied state at `index` (at most the last index);
   * the application then usually calls compact().
   */
  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    if (index <= this.currentSnapshot.metadata.index) throw ErrSnapOutOfDate;
    const offset = this.log[0]!.index;
    assert(index <= this.lastIndex(), `storage: snapshot ${index} is beyond last index ${this.lastIndex()}`);
    this.currentSnapshot = {
      data,
      metadata: { index, term: this.log[index - offset]!.term, confState: cloneConfState(confState) },
    };
    return this.currentSnapshot;
  }

  /** Discards entries up to and including compactIndex; throws ErrCompacted if already gone. */
  compact(compactIndex: number): void {
    const offset = this.log[0]!.index;
    if (compactIndex <= offset) throw ErrCompacted;
    assert(compactIndex <= this.lastIndex(), `storage: compact ${compactIndex} is beyond last index ${this.lastIndex()}`);
    const kept = this.log.slice(compactIndex - offset);
    kept[0] = { ...kept[0]!, data: new Uint8Array(0), type: EntryType.EntryNormal };
    this.log = kept;
  }

  /** Appends entries, truncating any conflicting suffix. Entries must be contiguous. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[0]!.index + entries.length - 1;
    if (last < first) return;
    let toAppend = entries;
    if (first > entries[0]!.index) toAppend = entries.slice(first - entries[0]!.index);
    const offset = toAppend[0]!.index - this.log[0]!.index;
    assert(offset <= this.log.length, `storage: missing log entry [last: ${this.lastIndex()}, append at: ${toAppend[0]!.index}]`);
    // In place: copying the whole log for each append made it quadratic in the log's length.
    this.log.length = offset;
    for (const entry of toAppend) this.log.push(entry);
  }
}

export function cloneConfState(state: ConfState): ConfState {
  return {
    voters: [...state.voters],
    learners: [...state.learners],
    votersOutgoing: [...state.votersOutgoing],
    learnersNext: [...state.learnersNext],
    autoLeave: state.autoLeave,
  };
}

export { emptyConfState };
