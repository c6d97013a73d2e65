/**
 * The raft log: durable entries in Storage followed by `unstable` entries (and
 * perhaps a snapshot) that the application has not yet persisted.
 *
 *   snapshot/first.....applied....committed....stable.....last
 *   --------|------------------------------------------------|
 *           <-------- storage ---------><---- unstable ------>
 */
import type { Entry, Snapshot } from "./messages.js";
import { entriesBytes } from "./messages.js";
import type { Storage } from "./storage.js";
import { limitSize } from "./storage.js";
import { assert, ErrCompacted, ErrUnavailable } from "./errors.js";

/** Entries and snapshot not yet persisted. `offset` is the index of entries[0]. */
export class Unstable {
  snapshot: Snapshot | undefined = undefined;
  entries: Entry[] = [];
  constructor(public offset: number) {}

  maybeFirstIndex(): number | undefined {
    return this.snapshot === undefined ? undefined : this.snapshot.metadata.index + 1;
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    if (this.snapshot !== undefined) return this.snapshot.metadata.index;
    return undefined;
  }

  maybeTerm(index: number): number | undefined {
    if (index < this.offset) {
      if (this.snapshot !== undefined && this.snapshot.metadata.index === index) return this.snapshot.metadata.term;
      return undefined;
    }
    const last = this.maybeLastIndex();
    if (last === undefined || index > last) return undefined;
    return this.entries[index - this.offset]!.term;
  }

  /** Entries up to (index, term) are now durable. Ignored if the entry was since replaced. */
  stableTo(index: number, term: number): void {
    const found = this.maybeTerm(index);
    if (found === undefined || found !== term || index < this.offset) return;
    this.entries = this.entries.slice(index + 1 - this.offset);
    this.offset = index + 1;
  }

  stableSnapshotTo(index: number): void {
    if (this.snapshot !== undefined && this.snapshot.metadata.index === index) this.snapshot = undefined;
  }

  restore(snapshot: Snapshot): void {
    this.offset = snapshot.metadata.index + 1;
    this.entries = [];
    this.snapshot = snapshot;
  }

  truncateAndAppend(entries: readonly Entry[]): void {
    const first = entries[0]!.index;
    if (first === this.offset + this.entries.length) {
      this.entries = this.entries.concat(entries);
    } else if (first <= this.offset) {
      // Replaces all unstable entries (and maybe some already persisted ones).
      this.offset = first;
      this.entries = [...entries];
    } else {
      this.entries = this.entries.slice(0, first - this.offset).concat(entries);
    }
  }

  slice(lo: number, hi: number): Entry[] {
    assert(lo >= this.offset && hi <= this.offset + this.entries.length && lo <= hi, `unstable: slice [${lo}, ${hi}) out of bounds`);
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}

export class RaftLog {
  readonly unstable: Unstable;
  /** Highest index known to be stored on a quorum. */
  committed: number;
  /** Highest index the application has applied (reported through advance()). */
  applied: number;
  /** Highest index handed to the application to apply (in a Ready not yet advanced). */
  applying: number;

  constructor(readonly storage: Storage, private readonly maxCommittedSizePerReadyBytes: number) {
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    this.committed = first - 1;
    this.applied = first - 1;
    this.applying = first - 1;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  /** Term of the entry at index; throws ErrCompacted / ErrUnavailable when unknown. */
  term(index: number): number {
    const dummy = this.firstIndex() - 1;
    if (index < dummy || index > this.lastIndex()) {
      if (index > this.lastIndex()) throw ErrUnavailable;
      throw ErrCompacted;
    }
    return this.unstable.maybeTerm(index) ?? this.storage.term(index);
  }

  /** Term at index, or 0 when it is compacted or unavailable. */
  termOrZero(index: number): number {
    try {
      return this.term(index);
    } catch (error) {
      if (error === ErrCompacted || error === ErrUnavailable) return 0;
      throw error;
    }
  }

  matchTerm(index: number, term: number): boolean {
    try {
      return this.term(index) === term;
    } catch (error) {
      if (error === ErrCompacted || error === ErrUnavailable) return false;
      throw error;
    }
  }

  /**
   * Appends a leader's entries after (index, logTerm) if they match; returns the
   * last new index, or undefined on a mismatch.
   */
  maybeAppend(index: number, logTerm: number, committed: number, entries: readonly Entry[]): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNewIndex = index + entries.length;
    const conflict = this.findConflict(entries);
    if (conflict !== 0) {
      assert(conflict > this.committed, `log: entry ${conflict} conflicts with committed entry (committed ${this.committed})`);
      this.append(entries.slice(conflict - (index + 1)));
    }
    this.commitTo(Math.min(committed, lastNewIndex));
    return lastNewIndex;
  }

  append(entries: readonly Entry[]): number {
    if (entries.length === 0) return this.lastIndex();
    const after = entries[0]!.index - 1;
    assert(after >= this.committed, `log: appending after ${after} is below committed ${this.committed}`);
    this.unstable.truncateAndAppend(entries);
    return this.lastIndex();
  }

  /** The index of the first entry that is new or conflicts with the log, or 0. */
  findConflict(entries: readonly Entry[]): number {
    for (const entry of entries) {
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return 0;
  }

  /**
   * For fast backtracking: the largest index <= `index` whose term is <= `term`,
   * with that term. Every entry between it and `index` has a larger term.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    for (; index > 0; index--) {
      let found: number;
      try {
        found = this.term(index);
      } catch (error) {
        if (error === ErrCompacted || error === ErrUnavailable) return { index, term: 0 };
        throw error;
      }
      if (found <= term) return { index, term: found };
    }
    return { index: 0, term: 0 };
  }

  unstableEntries(): Entry[] {
    return this.unstable.entries;
  }

  hasNextCommittedEntries(): boolean {
    return this.committed > Math.max(this.applied, this.firstIndex() - 1) && this.unstable.snapshot === undefined;
  }

  /** Committed entries not yet applied, at most maxCommittedSizePerReadyBytes (always one if any). */
  nextCommittedEntries(): Entry[] {
    if (!this.hasNextCommittedEntries()) return [];
    const lo = Math.max(this.applied + 1, this.firstIndex());
    return this.slice(lo, this.committed + 1, this.maxCommittedSizePerReadyBytes);
  }

  /** The snapshot to hand to the application (unstable), or the storage one. */
  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  commitTo(index: number): void {
    if (this.committed >= index) return;
    assert(index <= this.lastIndex(), `log: commit ${index} is out of range [last index ${this.lastIndex()}]`);
    this.committed = index;
  }

  appliedTo(index: number): void {
    if (index === 0) return;
    assert(
      this.committed >= index && index >= this.applied,
      `log: applied ${index} is out of range [previous applied ${this.applied}, committed ${this.committed}]`,
    );
    this.applied = index;
    if (this.applying < index) this.applying = index;
  }

  stableTo(index: number, term: number): void {
    this.unstable.stableTo(index, term);
  }

  stableSnapshotTo(index: number): void {
    this.unstable.stableSnapshotTo(index);
  }

  /** Commits up to maxIndex if the entry there is of `term` (the current term). */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.termOrZero(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  restore(snapshot: Snapshot): void {
    this.committed = snapshot.metadata.index;
    this.unstable.restore(snapshot);
  }

  /** Is a log ending at (lastIndex, term) at least as up to date as this one? */
  isUpToDate(lastIndex: number, term: number): boolean {
    return term > this.lastTerm() || (term === this.lastTerm() && lastIndex >= this.lastIndex());
  }

  /** Entries in [lo, hi), limited to maxBytes (always at least one). Throws ErrCompacted below firstIndex. */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo === hi) return [];
    if (lo < this.firstIndex()) throw ErrCompacted;
    assert(lo < hi && hi <= this.lastIndex() + 1, `log: slice [${lo}, ${hi}) out of bound [${this.firstIndex()}, ${this.lastIndex()}]`);
    let result: Entry[] = [];
    if (lo < this.unstable.offset) {
      const stored = this.storage.entries(lo, Math.min(hi, this.unstable.offset), maxBytes);
      if (stored.length < Math.min(hi, this.unstable.offset) - lo) return stored;
      result = stored;
    }
    if (hi > this.unstable.offset) {
      const fresh = this.unstable.slice(Math.max(lo, this.unstable.offset), hi);
      result = result.length > 0 ? result.concat(fresh) : fresh;
    }
    return limitSize(result, maxBytes);
  }

  /** All entries from `index` to the end (used by tests and the simulator). */
  entriesFrom(index: number, maxBytes: number): Entry[] {
    if (index > this.lastIndex()) return [];
    return this.slice(index, this.lastIndex() + 1, maxBytes);
  }

  allEntries(): Entry[] {
    return this.entriesFrom(this.firstIndex(), Number.MAX_SAFE_INTEGER);
  }

  describe(): string {
    return `committed=${this.committed} applied=${this.applied} unstable.offset=${this.unstable.offset} unstable.entries=${this.unstable.entries.length} bytes=${entriesBytes(this.unstable.entries)}`;
  }
}
