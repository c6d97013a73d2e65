import sortedBtree from "sorted-btree";
import { KeyIndex, type KeyAtRevision } from "./key-index.js";
import type { Revision } from "./revision.js";

// sorted-btree is CommonJS: its class is the default export of module.exports.
const BTree = sortedBtree.default;

/**
 * The in-memory index of every key's history, ordered by key bytes. Keys are
 * held as latin1 strings: one character per byte, so string order is byte order.
 *
 * A range is `[key, end)`; `end === undefined` is the single key and `end === ""`
 * is unbounded (etcd's "\0" range end).
 */
export class TreeIndex {
  private readonly tree = new BTree<string, KeyIndex>(undefined, (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0));

  get size(): number {
    return this.tree.size;
  }

  get(key: string, atRevision: number): KeyAtRevision | undefined {
    return this.tree.get(key)?.get(atRevision);
  }

  keyIndex(key: string): KeyIndex | undefined {
    return this.tree.get(key);
  }

  put(key: string, revision: Revision): void {
    let index = this.tree.get(key);
    if (index === undefined) {
      index = new KeyIndex(key);
      this.tree.set(key, index);
    }
    index.put(revision);
  }

  /** Returns false when the key is not live (nothing to delete). */
  tombstone(key: string, revision: Revision): boolean {
    const index = this.tree.get(key);
    return index !== undefined && index.tombstone(revision);
  }

  /**
   * Restores one record read back from the backend at start-up, in revision
   * order. A key's first record carries its generation's creation and version;
   * a delete whose generation compaction removed is skipped.
   */
  restore(key: string, revision: Revision, record: { tombstone: boolean; createRevision: number; version: number }): void {
    const index = this.tree.get(key);
    if (index === undefined) {
      if (record.tombstone) return;
      const restored = new KeyIndex(key);
      restored.restoreFirst({ main: record.createRevision, sub: 0 }, revision, record.version);
      this.tree.set(key, restored);
    } else if (record.tombstone) {
      if (!index.tombstone(revision)) throw new Error(`restored delete of ${key} without a live generation`);
    } else {
      index.put(revision);
    }
  }

  /** Calls `visit` for each key of the range live at `atRevision`, in key order, until it returns false. */
  range(key: string, end: string | undefined, atRevision: number, visit: (key: string, at: KeyAtRevision) => boolean): void {
    if (end === undefined) {
      const at = this.get(key, atRevision);
      if (at !== undefined) visit(key, at);
      return;
    }
    this.each(key, end, (index) => {
      const at = index.get(atRevision);
      return at === undefined ? true : visit(index.key, at);
    });
  }

  /** Number of keys of the range live at `atRevision`. */
  count(key: string, end: string | undefined, atRevision: number): number {
    let count = 0;
    this.range(key, end, atRevision, () => {
      count++;
      return true;
    });
    return count;
  }

  /** Every key index in `[key, end)` (end "" unbounded), in order, until `visit` returns false. */
  each(key: string, end: string, visit: (index: KeyIndex) => boolean): void {
    for (const [indexKey, index] of this.tree.entries(key)) {
      if (end !== "" && indexKey >= end) return;
      if (!visit(index)) return;
    }
  }

  /** Compacts every key at `atRevision`; returns the revisions at or below it that must stay. */
  compact(atRevision: number): Set<string> {
    const available = new Set<string>();
    const emptied: string[] = [];
    for (const [key, index] of this.tree.entries()) {
      index.compact(atRevision, available);
      if (index.isEmpty()) emptied.push(key);
    }
    for (const key of emptied) this.tree.delete(key);
    return available;
  }

  keep(atRevision: number): Set<string> {
    const available = new Set<string>();
    for (const [, index] of this.tree.entries()) index.keep(atRevision, available);
    return available;
  }
}
