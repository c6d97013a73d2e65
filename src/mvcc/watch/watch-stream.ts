import { Watcher, type WatcherResponse, type WatchRequest } from "./watcher.js";

/** etcd's errors for a watch that cannot be created; the message is sent as cancel_reason. */
export class WatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WatchError";
  }
}

export const ErrWatcherDuplicateId = new WatchError("mvcc: duplicate watch ID provided on the WatchStream");
export const ErrEmptyWatcherRange = new WatchError("mvcc: watcher range is empty");

/** The receiving end of a stream, implemented by the API layer. */
export interface WatchSink {
  /**
   * Takes a response for sending. Returns false, taking nothing, when the
   * stream's buffer is full, unless `required` (control responses), which is
   * always taken.
   */
  offer(response: WatcherResponse, required: boolean): boolean;
  /** True while the stream's buffer is full. */
  full(): boolean;
  /** Called when every watcher of the stream has become synced. */
  synced(): void;
}

/** What a stream needs from the watchable store. */
export interface WatcherRegistry {
  register(watcher: Watcher): void;
  unregister(watcher: Watcher): void;
  /** Sends a progress response to a synced watcher; false if it is not synced. */
  progress(watcher: Watcher): boolean;
  /** Moves the stream's victims back to catching up. */
  revive(stream: WatchStream): void;
  readonly currentRevision: number;
}

/**
 * The watchers of one client stream, by id. Ids chosen by the stream count up
 * from 0, skipping ids in use, as etcd's do.
 */
export class WatchStream {
  readonly watchers = new Map<number, Watcher>();
  /** Watchers waiting for the sink to drain. */
  readonly victims = new Set<Watcher>();
  /** Watchers of this stream not in the synced group (kept by the store). */
  laggingCount = 0;
  private nextId = 0;
  private closed = false;

  constructor(
    readonly id: number,
    readonly sink: WatchSink,
    private readonly registry: WatcherRegistry,
  ) {}

  /** Creates a watcher; returns its id. Throws a WatchError when it cannot be created. */
  watch(request: WatchRequest): number {
    if (this.closed) throw new Error("watch on a closed stream");
    if (request.end !== undefined && request.end !== "" && request.key >= request.end) throw ErrEmptyWatcherRange;
    let id = request.id;
    if (id !== 0) {
      if (this.watchers.has(id)) throw ErrWatcherDuplicateId;
    } else {
      while (this.watchers.has(this.nextId)) this.nextId++;
      id = this.nextId++;
    }
    const start = request.startRevision > 0 ? request.startRevision : this.registry.currentRevision + 1;
    const watcher = new Watcher(id, request, this, start);
    this.watchers.set(id, watcher);
    this.registry.register(watcher);
    return id;
  }

  /** Removes a watcher; false when the stream has no watcher with that id. */
  cancel(id: number): boolean {
    const watcher = this.watchers.get(id);
    if (watcher === undefined) return false;
    this.remove(watcher);
    return true;
  }

  /** Called by the store for a watcher it canceled (its history was compacted). */
  remove(watcher: Watcher): void {
    this.watchers.delete(watcher.id);
    this.registry.unregister(watcher);
  }

  /** Asks for a progress response for one watcher: sent only if it is synced. */
  requestProgress(id: number): boolean {
    const watcher = this.watchers.get(id);
    return watcher !== undefined && this.registry.progress(watcher);
  }

  /** True when every watcher of the stream has every event up to the current revision. */
  allSynced(): boolean {
    return this.laggingCount === 0;
  }

  /** The sink drained: its victims catch up again. */
  resume(): void {
    if (this.victims.size > 0) this.registry.revive(this);
  }

  close(): void {
    this.closed = true;
    for (const watcher of [...this.watchers.values()]) this.remove(watcher);
  }

  deliver(response: WatcherResponse, required = false): boolean {
    return this.sink.offer(response, required);
  }
}
