import { V2Code, V2Error } from "./errors.js";
import type { V2Action, V2Event } from "./event.js";
import { V2Node, type NodeJson } from "./node.js";
import { WatcherHub, type V2Watcher } from "./watcher-hub.js";

/** Options for the TTL of a write: an absolute expiry (undefined: permanent), and whether only the TTL is refreshed. */
export interface TtlOptions {
  expireAtMs?: number;
  refresh?: boolean;
}

/** Expiry times before 2000-01-01 mean "permanent", as in etcd. */
const minExpireAtMs = Date.UTC(2000, 0, 1);

/** etcd's path.Clean(path.Join("/", key)). */
export function cleanPath(key: string): string {
  const parts: string[] = [];
  for (const part of key.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return `/${parts.join("/")}`;
}

/**
 * etcd's v2 store: a tree of nodes under "/", each change numbered by a store
 * index, with the last 1,000 events for watches. Writes come only from
 * applied log entries; `nowMs` only shapes the TTLs shown in answers.
 * Paths in "readonly" (the root and the top directories) cannot be changed.
 */
export class V2Store {
  root: V2Node;
  currentIndex = 0;
  readonly hub = new WatcherHub();
  private expiringCache: { root: V2Node; index: number; nodes: V2Node[] } | undefined;
  /** Counted operations, for /v2/stats/store. */
  readonly stats = new Map<string, number>();

  constructor(
    private readonly readonly: ReadonlySet<string>,
    private readonly nowMs: () => number = Date.now,
  ) {
    this.root = new V2Node("/", 0, 0, undefined, { dir: true });
    for (const path of readonly) if (path !== "/") this.root.children!.set(path.slice(1), new V2Node(path, 0, 0, this.root, { dir: true }));
  }

  get(key: string, recursive: boolean, sorted: boolean): V2Event {
    const path = cleanPath(key);
    const node = this.count("gets", () => this.internalGet(path));
    const json = node.toJson(this.nowMs(), { recursive, sorted, listChildren: true });
    return { action: "get", node: json, etcdIndex: this.currentIndex };
  }

  set(key: string, dir: boolean, value: string, ttl: TtlOptions): V2Event {
    return this.count("sets", () => {
      const path = cleanPath(key);
      if (ttl.refresh === true) value = this.internalGet(path).value;
      return this.finish(this.create(path, dir, value, true, ttl.expireAtMs, "set"), ttl);
    });
  }

  /** Creates a node (with `unique`, a new in-order key under `key`); 105 if it exists. */
  createNode(key: string, dir: boolean, value: string, unique: boolean, ttl: TtlOptions): V2Event {
    return this.count("create", () => {
      let path = cleanPath(key);
      if (unique) path = cleanPath(`${path}/${String(this.currentIndex + 1).padStart(20, "0")}`);
      return this.finish(this.create(path, dir, value, false, ttl.expireAtMs, "create"), ttl);
    });
  }

  update(key: string, value: string, ttl: TtlOptions): V2Event {
    return this.count("update", () => {
      const path = this.writable(key);
      const node = this.internalGet(path);
      if (node.isDir && value.length !== 0) throw new V2Error(V2Code.NotFile, path, this.currentIndex);
      if (ttl.refresh === true) value = node.value;
      const next = this.currentIndex + 1;
      const prevNode = node.toJson(this.nowMs(), { recursive: false, sorted: false });
      if (!node.isDir) {
        node.value = value;
        node.modifiedIndex = next;
      }
      node.expireAtMs = effectiveExpiry(ttl.expireAtMs);
      const json: NodeJson = { key: path, ...(node.isDir ? { dir: true as const } : { value }), ...node.expiration(this.nowMs()), modifiedIndex: next, createdIndex: node.createdIndex };
      this.currentIndex = next;
      return this.finish({ action: "update", node: json, prevNode, etcdIndex: next }, ttl);
    });
  }

  compareAndSwap(key: string, prevValue: string, prevIndex: number, value: string, ttl: TtlOptions): V2Event {
    return this.count("compareAndSwap", () => {
      const path = this.writable(key);
      const node = this.internalGet(path);
      if (node.isDir) throw new V2Error(V2Code.NotFile, path, this.currentIndex);
      this.compare(node, prevValue, prevIndex);
      if (ttl.refresh === true) value = node.value;
      const prevNode = node.toJson(this.nowMs(), { recursive: false, sorted: false });
      this.currentIndex++;
      node.value = value;
      node.modifiedIndex = this.currentIndex;
      node.expireAtMs = effectiveExpiry(ttl.expireAtMs);
      const json: NodeJson = { key: path, value, ...node.expiration(this.nowMs()), modifiedIndex: this.currentIndex, createdIndex: node.createdIndex };
      return this.finish({ action: "compareAndSwap", node: json, prevNode, etcdIndex: this.currentIndex }, ttl);
    });
  }

  delete(key: string, dir: boolean, recursive: boolean): V2Event {
    return this.count("delete", () => {
      const path = this.writable(key);
      const node = this.internalGet(path);
      if (recursive) dir = true;
      if (node.isDir && !dir) throw new V2Error(V2Code.NotFile, path, this.currentIndex);
      if (node.isDir && node.children!.size > 0 && !recursive) throw new V2Error(V2Code.DirNotEmpty, path, this.currentIndex);
      return this.remove(node, "delete");
    });
  }

  compareAndDelete(key: string, prevValue: string, prevIndex: number): V2Event {
    return this.count("compareAndDelete", () => {
      const path = this.writable(key);
      const node = this.internalGet(path);
      if (node.isDir) throw new V2Error(V2Code.NotFile, path, this.currentIndex);
      this.compare(node, prevValue, prevIndex);
      return this.remove(node, "compareAndDelete");
    });
  }

  /** Starts a watch; `sinceIndex` 0 means the next change. */
  watch(key: string, recursive: boolean, stream: boolean, sinceIndex: number): V2Watcher {
    const path = cleanPath(key);
    return this.hub.watch(path, recursive, stream, sinceIndex === 0 ? this.currentIndex + 1 : sinceIndex, this.currentIndex);
  }

  /** Removes every node whose expiry is at or before `cutoffMs`, soonest first, one "expire" event each. */
  deleteExpired(cutoffMs: number): void {
    for (const node of this.expiring().filter((candidate) => candidate.expireAtMs !== undefined && candidate.expireAtMs <= cutoffMs)) {
      if (this.find(node.path) !== node) continue;
      this.remove(node, "expire");
      this.bump("expireCount");
    }
  }

  /** Whether any node has a TTL (the leader then proposes SYNC entries). */
  hasTtlKeys(): boolean {
    return this.expiring().length > 0;
  }

  /** Nodes with an expiry, soonest first; walked again only after a change (every change moves the index). */
  expiring(): V2Node[] {
    const cached = this.expiringCache;
    if (cached !== undefined && cached.root === this.root && cached.index === this.currentIndex) return cached.nodes;
    const found: V2Node[] = [];
    const visit = (node: V2Node) => {
      if (node.expireAtMs !== undefined) found.push(node);
      for (const child of node.children?.values() ?? []) visit(child);
    };
    visit(this.root);
    found.sort((a, b) => a.expireAtMs! - b.expireAtMs!);
    this.expiringCache = { root: this.root, index: this.currentIndex, nodes: found };
    return found;
  }

  private remove(node: V2Node, action: "delete" | "compareAndDelete" | "expire"): V2Event {
    const next = this.currentIndex + 1;
    const prevNode = node.toJson(this.nowMs(), { recursive: false, sorted: false });
    const json: NodeJson = { key: node.path, ...(node.isDir ? { dir: true as const } : {}), modifiedIndex: next, createdIndex: node.createdIndex };
    const event: V2Event = { action, node: json, prevNode, etcdIndex: next };
    const visit = (removed: V2Node) => {
      for (const child of removed.children?.values() ?? []) visit(child);
      this.hub.notifyPath(event, removed.path, true);
    };
    visit(node);
    node.parent?.children!.delete(node.name);
    this.currentIndex = next;
    this.hub.notify(event);
    return event;
  }

  private create(path: string, dir: boolean, value: string, replace: boolean, expireAtMs: number | undefined, action: V2Action): V2Event {
    if (this.readonly.has(path)) throw new V2Error(V2Code.RootReadOnly, "/", this.currentIndex);
    const next = this.currentIndex + 1;
    const slash = path.lastIndexOf("/");
    const parent = this.walkCreating(path.slice(0, slash) || "/", next);
    const name = path.slice(slash + 1);
    const existing = parent.children!.get(name);
    let prevNode: NodeJson | undefined;
    if (existing !== undefined) {
      if (!replace) throw new V2Error(V2Code.NodeExist, path, this.currentIndex);
      if (existing.isDir) throw new V2Error(V2Code.NotFile, path, this.currentIndex);
      prevNode = existing.toJson(this.nowMs(), { recursive: false, sorted: false });
    }
    const node = new V2Node(path, next, next, parent, dir ? { dir: true } : { value }, effectiveExpiry(expireAtMs));
    parent.children!.set(name, node);
    this.currentIndex = next;
    const json: NodeJson = { key: path, ...(dir ? { dir: true as const } : { value }), ...node.expiration(this.nowMs()), modifiedIndex: next, createdIndex: next };
    return { action, node: json, ...(prevNode === undefined ? {} : { prevNode }), etcdIndex: next };
  }

  /** Sends a write's event to watchers, or for a TTL refresh only records it. */
  private finish(event: V2Event, ttl: TtlOptions): V2Event {
    if (ttl.refresh === true) {
      event.refresh = true;
      this.hub.add(event);
    } else {
      this.hub.notify(event);
    }
    return event;
  }

  /** The directory at `path`, made (with its parents) when missing; 104 when a file is in the way. */
  private walkCreating(path: string, index: number): V2Node {
    let node = this.root;
    for (const part of path.split("/")) {
      if (part === "") continue;
      let child = node.children!.get(part);
      if (child === undefined) {
        child = new V2Node(`${node.path === "/" ? "" : node.path}/${part}`, index, index, node, { dir: true });
        node.children!.set(part, child);
      } else if (!child.isDir) {
        throw new V2Error(V2Code.NotDir, child.path, this.currentIndex);
      }
      node = child;
    }
    return node;
  }

  private internalGet(path: string): V2Node {
    let node = this.root;
    for (const part of path.split("/")) {
      if (part === "") continue;
      if (!node.isDir) throw new V2Error(V2Code.NotDir, node.path, this.currentIndex);
      const child = node.children!.get(part);
      if (child === undefined) throw new V2Error(V2Code.KeyNotFound, `${node.path === "/" ? "" : node.path}/${part}`, this.currentIndex);
      node = child;
    }
    return node;
  }

  private find(path: string): V2Node | undefined {
    try {
      return this.internalGet(path);
    } catch {
      return undefined;
    }
  }

  private writable(key: string): string {
    const path = cleanPath(key);
    if (this.readonly.has(path)) throw new V2Error(V2Code.RootReadOnly, "/", this.currentIndex);
    return path;
  }

  private compare(node: V2Node, prevValue: string, prevIndex: number): void {
    const indexMatch = prevIndex === 0 || node.modifiedIndex === prevIndex;
    const valueMatch = prevValue === "" || node.value === prevValue;
    if (indexMatch && valueMatch) return;
    let cause: string;
    if (!indexMatch && valueMatch) cause = `[${prevIndex} != ${node.modifiedIndex}]`;
    else if (indexMatch) cause = `[${prevValue} != ${node.value}]`;
    else cause = `[${prevValue} != ${node.value}] [${prevIndex} != ${node.modifiedIndex}]`;
    throw new V2Error(V2Code.TestFailed, cause, this.currentIndex);
  }

  private count<T>(operation: string, body: () => T): T {
    try {
      const result = body();
      this.bump(`${operation}Success`);
      return result;
    } catch (error) {
      this.bump(`${operation}Fail`);
      throw error;
    }
  }

  private bump(name: string): void {
    this.stats.set(name, (this.stats.get(name) ?? 0) + 1);
  }
}

function effectiveExpiry(expireAtMs: number | undefined): number | undefined {
  return expireAtMs === undefined || expireAtMs < minExpireAtMs ? undefined : expireAtMs;
}
