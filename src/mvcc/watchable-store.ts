import { StoreError } from "./errors.js";
import type { KeyValue } from "./key-value.js";
import { keyToString } from "./keys.js";
import type { Change, KvStore } from "./store.js";
import { readHistory, RecentHistory, type HistorySlice } from "./watch/history.js";
import { watchLimits } from "./watch/limits.js";
import { WatchStream, type WatcherRegistry, type WatchSink } from "./watch/watch-stream.js";
import { WatcherGroup } from "./watch/watcher-group.js";
import { isCreateEvent, type Watcher, type WatcherGroupName, type WatchEvent } from "./watch/watcher.js";

export { WatchError, WatchStream, type WatchSink } from "./watch/watch-stream.js";
export type { WatchEvent, WatcherResponse, WatchRequest } from "./watch/watcher.js";

/** How many watchers are in each group, and how many streams are open. */
export interface WatchStats {
  streams: number;
  synced: number;
  unsynced: number;
  victims: number;
}

/**
 * The store's watchers, in three groups as etcd keeps them:
 *
 * - synced: they have every event up to the current revision; each write
 *   transaction's events go to them as it commits, one response per watcher
 *   and revision.
 * - unsynced: they need history (a start revision in the past, or a stream
 *   that was full); sync rounds bring them up to date from the recent changes
 *   kept in memory or from the backend, then move them to synced.
 * - victims: their stream's buffer was full when events were due; nothing is
 *   held for them. When the stream drains they become unsynced and catch up
 *   from history, or are canceled with the compact revision if it is gone.
 *
 * Writes never wait for a watcher: a stream that cannot take a response turns
 * its watchers into victims, and their memory stays one watcher each.
 */
export class WatchableStore implements WatcherRegistry {
  private readonly synced = new WatcherGroup();
  private readonly unsynced = new Set<Watcher>();
  private readonly recent = new RecentHistory(watchLimits.recentRevisionsMax, watchLimits.recentBytesMax);
  private readonly streams = new Set<WatchStream>();
  private readonly stopObserving: () => void;
  private nextStreamId = 1;
  private victimCount = 0;
  private syncRunning = false;
  private closed = false;

  constructor(private readonly store: KvStore) {
    // After the store is replaced by a snapshot, every watcher catches up from history.
    store.onRestore(() => {
      this.recent.clear();
      for (const stream of this.streams) for (const watcher of stream.watchers.values()) if (watcher.group === "synced") this.setGroup(watcher, "unsynced");
    });
    this.stopObserving = store.observe((changes, revision) => this.notify(changes, revision));
  }

  get currentRevision(): number {
    return this.store.currentRevision;
  }

  /** Opens a stream whose responses go to `sink`. */
  newStream(sink: WatchSink): WatchStream {
    if (this.closed) throw new Error("watchable store is closed");
    const stream = new WatchStream(this.nextStreamId++, sink, this);
    this.streams.add(stream);
    return stream;
  }

  closeStream(stream: WatchStream): void {
    stream.close();
    this.streams.delete(stream);
  }

  stats(): WatchStats {
    return { streams: this.streams.size, synced: this.synced.size, unsynced: this.unsynced.size, victims: this.victimCount };
  }

  close(): void {
    this.closed = true;
    this.stopObserving();
    for (const stream of [...this.streams]) this.closeStream(stream);
  }

  register(watcher: Watcher): void {
    this.setGroup(watcher, watcher.nextRevision > this.store.currentRevision ? "synced" : "unsynced");
  }

  unregister(watcher: Watcher): void {
    this.setGroup(watcher, undefined);
  }

  progress(watcher: Watcher): boolean {
    if (watcher.group !== "synced") return false;
    watcher.stream.deliver({ watchId: watcher.id, events: [], revision: this.store.currentRevision, compactRevision: 0 }, true);
    return true;
  }

  revive(stream: WatchStream): void {
    for (const watcher of [...stream.victims]) this.setGroup(watcher, "unsynced");
  }

  /** The events of one committed write transaction, to the synced watchers. */
  private notify(changes: readonly Change[], revision: number): void {
    this.recent.add(changes, revision);
    if (this.synced.size === 0) return;
    const batches = new Map<Watcher, WatchEvent[]>();
    for (const change of changes) {
      const event = toEvent(change);
      this.synced.forEachMatching(keyToString(change.kv.key), (watcher) => {
        if (watcher.nextRevision > revision) return;
        const batch = batches.get(watcher);
        if (batch === undefined) batches.set(watcher, [event]);
        else batch.push(event);
      });
    }
    const previous = new PreviousKeyValues(this.store);
    for (const [watcher, events] of batches) {
      if (this.send(watcher, events, revision, previous)) {
        watcher.nextRevision = revision + 1;
      } else {
        watcher.nextRevision = revision;
        this.setGroup(watcher, "victim");
      }
    }
  }

  /** Offers a watcher the events it keeps of `events`; true when taken or nothing was to send. */
  private send(watcher: Watcher, events: WatchEvent[], revision: number, previous: PreviousKeyValues): boolean {
    let kept = watcher.keep(events);
    if (kept.length === 0) return true;
    if (watcher.request.prevKv) kept = kept.map((event) => previous.attach(event));
    return watcher.stream.deliver({ watchId: watcher.id, events: kept, revision, compactRevision: 0 });
  }

  private setGroup(watcher: Watcher, group: WatcherGroupName | undefined): void {
    const from = watcher.group;
    if (from === group) return;
    if (from === "synced") this.synced.delete(watcher);
    else if (from === "unsynced") this.unsynced.delete(watcher);
    else if (from === "victim") {
      watcher.stream.victims.delete(watcher);
      this.victimCount--;
    }
    watcher.group = group;
    if (group === "synced") this.synced.add(watcher);
    else if (group === "unsynced") this.unsynced.add(watcher);
    else if (group === "victim") {
      watcher.stream.victims.add(watcher);
      this.victimCount++;
    }
    const wasLagging = from === "unsynced" || from === "victim";
    const isLagging = group === "unsynced" || group === "victim";
    if (!wasLagging && isLagging) watcher.stream.laggingCount++;
    if (wasLagging && !isLagging && --watcher.stream.laggingCount === 0) watcher.stream.sink.synced();
    if (group === "unsynced") this.scheduleSync();
  }

  private scheduleSync(): void {
    if (this.syncRunning || this.closed) return;
    this.syncRunning = true;
    setImmediate(() => void this.syncLoop());
  }

  private async syncLoop(): Promise<void> {
    try {
      while (!this.closed && this.unsynced.size > 0) {
        if (!(await this.syncRound())) await new Promise((resolve) => setTimeout(resolve, watchLimits.idleSyncRoundDelayMs));
      }
    } finally {
      this.syncRunning = false;
    }
    if (!this.closed && this.unsynced.size > 0) this.scheduleSync();
  }

  /**
   * Brings up to `watchersPerSyncRound` unsynced watchers forward: cancels those
   * whose history was compacted, reads the changes they miss (from memory, or from
   * the backend once it holds them) and sends each one response. Returns false
   * when nothing could move.
   */
  private async syncRound(): Promise<boolean> {
    let chosen = this.chooseUnsynced();
    if (chosen.length === 0) return true;
    let target: number | undefined;
    if (!this.recentCovers(lowestNextRevision(chosen))) {
      target = this.store.currentRevision;
      await this.store.backend.flushed();
      if (this.closed) return true;
    }
    chosen = this.cancelCompacted(chosen.filter((watcher) => watcher.group === "unsynced"));
    if (chosen.length === 0) return true;
    const slice = this.readSlice(lowestNextRevision(chosen), target);
    if (slice === undefined) return false;
    return this.distribute(chosen, slice);
  }

  private chooseUnsynced(): Watcher[] {
    const chosen: Watcher[] = [];
    for (const watcher of this.unsynced) {
      if (chosen.length >= watchLimits.watchersPerSyncRound) break;
      if (watcher.stream.sink.full()) this.setGroup(watcher, "victim");
      else chosen.push(watcher);
    }
    return chosen;
  }

  /** True when the recent changes hold everything from `from` on that was not compacted. */
  private recentCovers(from: number): boolean {
    return from > this.store.compactRevision && this.recent.covers(from, this.store.currentRevision);
  }

  /** Cancels, with the compact revision, watchers that need compacted history; returns the others. */
  private cancelCompacted(watchers: Watcher[]): Watcher[] {
    const compactRevision = this.store.compactRevision;
    return watchers.filter((watcher) => {
      if (watcher.nextRevision >= compactRevision) return true;
      watcher.stream.deliver({ watchId: watcher.id, events: [], revision: 0, compactRevision }, true);
      watcher.stream.remove(watcher);
      return false;
    });
  }

  /** The changes from `from` on; `flushedThrough` is the revision the backend was flushed up to, if it was. */
  private readSlice(from: number, flushedThrough: number | undefined): HistorySlice | undefined {
    const current = this.store.currentRevision;
    if (this.recentCovers(from)) return { changes: this.recent.slice(from, current), through: current };
    if (flushedThrough === undefined) return undefined;
    const slice = readHistory(this.store.backend, from, flushedThrough, watchLimits.recordsPerSyncRound);
    if (slice.through === flushedThrough && flushedThrough < current && this.recentCovers(flushedThrough + 1)) {
      slice.changes.push(...this.recent.slice(flushedThrough + 1, current));
      slice.through = current;
    }
    return slice;
  }

  /** Gives each chosen watcher its events of `slice` in one response, then moves it on; false if none moved. */
  private distribute(chosen: Watcher[], slice: HistorySlice): boolean {
    const group = new WatcherGroup();
    for (const watcher of chosen) group.add(watcher);
    const batches = new Map<Watcher, CatchUpBatch>();
    for (const change of slice.changes) {
      const event = toEvent(change);
      const revision = change.kv.modRevision;
      group.forEachMatching(keyToString(change.kv.key), (watcher) => {
        if (watcher.nextRevision > revision) return;
        let batch = batches.get(watcher);
        if (batch === undefined) batches.set(watcher, (batch = new CatchUpBatch()));
        batch.add(event, revision);
      });
    }
    const current = this.store.currentRevision;
    const previous = new PreviousKeyValues(this.store);
    let moved = false;
    for (const watcher of chosen) {
      const batch = batches.get(watcher);
      if (!this.send(watcher, batch?.events ?? [], current, previous)) {
        this.setGroup(watcher, "victim");
        moved = true;
        continue;
      }
      const next = batch?.stoppedAt ?? Math.max(watcher.nextRevision, slice.through + 1);
      moved ||= next !== watcher.nextRevision;
      watcher.nextRevision = next;
      if (watcher.nextRevision > current) this.setGroup(watcher, "synced");
    }
    return moved;
  }
}

/** One watcher's events of a sync round, up to `revisionsPerCatchUpResponse` revisions. */
class CatchUpBatch {
  readonly events: WatchEvent[] = [];
  /** The first revision left out, once the batch is full. */
  stoppedAt: number | undefined;
  private revisions = 0;
  private lastRevision = 0;

  add(event: WatchEvent, revision: number): void {
    if (this.stoppedAt !== undefined) return;
    if (revision !== this.lastRevision) {
      if (this.revisions >= watchLimits.revisionsPerCatchUpResponse) {
        this.stoppedAt = revision;
        return;
      }
      this.revisions++;
      this.lastRevision = revision;
    }
    this.events.push(event);
  }
}

/** The key-values before events, read once per event for every watcher that asks. */
class PreviousKeyValues {
  private readonly cache = new Map<WatchEvent, WatchEvent>();

  constructor(private readonly store: KvStore) {}

  attach(event: WatchEvent): WatchEvent {
    if (isCreateEvent(event)) return event;
    let withPrevious = this.cache.get(event);
    if (withPrevious === undefined) {
      const prevKv = this.read(event.kv);
      withPrevious = prevKv === undefined ? event : { ...event, prevKv };
      this.cache.set(event, withPrevious);
    }
    return withPrevious;
  }

  private read(kv: KeyValue): KeyValue | undefined {
    try {
      const result = this.store.rangeAt(keyToString(kv.key), undefined, { revision: kv.modRevision - 1 }, this.store.currentRevision);
      return result.kvs[0];
    } catch (error) {
      // As in etcd, an event whose previous revision was compacted comes without it.
      if (error instanceof StoreError) return undefined;
      throw error;
    }
  }
}

function toEvent(change: Change): WatchEvent {
  return { type: change.deleted ? "delete" : "put", kv: change.kv };
}

function lowestNextRevision(watchers: Watcher[]): number {
  let lowest = Infinity;
  for (const watcher of watchers) lowest = Math.min(lowest, watcher.nextRevision);
  return lowest;
}
