import { EventHistory, eventIndex, type V2Event } from "./event.js";
import { V2Code, V2Error } from "./errors.js";

/** A waiting v2 watch: `next` resolves with each event it sees (one, unless it streams). */
export class V2Watcher {
  private readonly queue: V2Event[] = [];
  private waiting: ((event: V2Event | undefined) => void) | undefined;
  removed = false;

  constructor(
    readonly key: string,
    readonly recursive: boolean,
    readonly stream: boolean,
    readonly sinceIndex: number,
    /** The store index when the watch began (its X-Etcd-Index). */
    readonly startIndex: number,
    private readonly hub: WatcherHub,
  ) {}

  /** The next event, or undefined once the watcher is removed. */
  next(): Promise<V2Event | undefined> {
    const event = this.queue.shift();
    if (event !== undefined || this.removed) return Promise.resolve(event);
    return new Promise((resolve) => (this.waiting = resolve));
  }

  deliver(event: V2Event): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    if (waiting !== undefined) waiting(event);
    else if (this.queue.length < watcherQueueMax) this.queue.push(event);
    // As etcd does, a watcher too slow to take its events is ended, never left with a gap.
    else this.remove();
  }

  remove(): void {
    if (this.removed) return;
    this.removed = true;
    this.hub.removeWatcher(this);
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.(undefined);
  }
}

/** Events a streaming watcher may hold before it is ended as too slow (etcd's channel holds 100). */
const watcherQueueMax = 100;

/** A watch path is hidden from an event when the part of the key below it has a component starting with "_". */
function isHidden(watchPath: string, keyPath: string): boolean {
  if (watchPath.length > keyPath.length) return false;
  return `/${keyPath.slice(watchPath.length)}`.replace(/\/+/g, "/").includes("/_");
}

/** The v2 store's watchers by path, and its event history. */
export class WatcherHub {
  readonly history = new EventHistory();
  private readonly watchers = new Map<string, Set<V2Watcher>>();
  count = 0;

  /** Starts a watch at `sinceIndex`; an event already in the history is delivered at once. */
  watch(key: string, recursive: boolean, stream: boolean, sinceIndex: number, storeIndex: number): V2Watcher {
    if (this.history.events.length > 0 && sinceIndex < this.history.startIndex) {
      throw new V2Error(V2Code.EventIndexCleared, `the requested history has been cleared [${this.history.startIndex}/${sinceIndex}]`, storeIndex);
    }
    const watcher = new V2Watcher(key, recursive, stream, sinceIndex, storeIndex, this);
    const past = this.history.scan(key, recursive, sinceIndex);
    if (past !== undefined) {
      watcher.deliver({ ...past, etcdIndex: storeIndex });
      if (!stream) {
        watcher.removed = true;
        return watcher;
      }
    }
    let set = this.watchers.get(key);
    if (set === undefined) this.watchers.set(key, (set = new Set()));
    set.add(watcher);
    this.count++;
    return watcher;
  }

  removeWatcher(watcher: V2Watcher): void {
    const set = this.watchers.get(watcher.key);
    if (set?.delete(watcher) === true) {
      this.count--;
      if (set.size === 0) this.watchers.delete(watcher.key);
    }
  }

  /** Records an event and tells the watchers of its key and of every directory above it. */
  notify(event: V2Event): void {
    this.history.add(event);
    const key = event.node.key ?? "/";
    let path = "";
    this.notifyPath(event, "/", false);
    for (const segment of key.split("/")) {
      if (segment === "") continue;
      path = `${path}/${segment}`;
      this.notifyPath(event, path, false);
    }
  }

  /** Records an event without telling anyone (a TTL refresh). */
  add(event: V2Event): void {
    this.history.add(event);
  }

  /** Tells the watchers at `path`; `deleted` when `path` lies under a deleted directory. */
  notifyPath(event: V2Event, path: string, deleted: boolean): void {
    const set = this.watchers.get(path);
    if (set === undefined) return;
    const key = event.node.key ?? "";
    const original = key === path;
    if (!original && isHidden(path, key)) return;
    for (const watcher of [...set]) {
      if (!(watcher.recursive || original || deleted) || eventIndex(event) < watcher.sinceIndex) continue;
      watcher.deliver(event);
      if (!watcher.stream) watcher.remove();
    }
  }
}
