import type { Watcher } from "./watcher.js";

/**
 * A set of watchers indexed for matching a key: watchers of a single key by that
 * key, range watchers in a list. Matching a key costs one map lookup plus the
 * range watchers.
 */
export class WatcherGroup {
  private readonly byKey = new Map<string, Set<Watcher>>();
  private readonly ranges = new Set<Watcher>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(watcher: Watcher): void {
    const key = watcher.request.key;
    if (watcher.request.end !== undefined) {
      this.ranges.add(watcher);
    } else {
      let set = this.byKey.get(key);
      if (set === undefined) this.byKey.set(key, (set = new Set()));
      set.add(watcher);
    }
    this.count++;
  }

  delete(watcher: Watcher): boolean {
    let removed: boolean;
    if (watcher.request.end !== undefined) {
      removed = this.ranges.delete(watcher);
    } else {
      const set = this.byKey.get(watcher.request.key);
      removed = set?.delete(watcher) ?? false;
      if (set !== undefined && set.size === 0) this.byKey.delete(watcher.request.key);
    }
    if (removed) this.count--;
    return removed;
  }

  /** Calls `visit` for every watcher whose range holds `key`. */
  forEachMatching(key: string, visit: (watcher: Watcher) => void): void {
    const set = this.byKey.get(key);
    if (set !== undefined) for (const watcher of set) visit(watcher);
    for (const watcher of this.ranges) if (watcher.contains(key)) visit(watcher);
  }

  *[Symbol.iterator](): IterableIterator<Watcher> {
    for (const set of this.byKey.values()) yield* set;
    yield* this.ranges;
  }
}
