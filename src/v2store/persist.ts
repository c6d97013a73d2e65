import type { V2Event } from "./event.js";
import { V2Node } from "./node.js";
import type { V2Store } from "./store.js";

/** A node as saved: [name, createdIndex, modifiedIndex, value or children, expireAtMs?]. */
type SavedNode = { name: string; created: number; modified: number; value?: string; children?: SavedNode[]; expireAtMs?: number };

interface SavedStore {
  version: 1;
  currentIndex: number;
  root: SavedNode;
  history: V2Event[];
}

/** The store as bytes for the backend: the tree, the index and the event history (watchers are not saved). */
export function saveStore(store: V2Store): Buffer {
  const save = (node: V2Node): SavedNode => {
    const saved: SavedNode = { name: node.name, created: node.createdIndex, modified: node.modifiedIndex };
    if (node.isDir) saved.children = [...node.children!.values()].map(save);
    else saved.value = node.value;
    if (node.expireAtMs !== undefined) saved.expireAtMs = node.expireAtMs;
    return saved;
  };
  const saved: SavedStore = { version: 1, currentIndex: store.currentIndex, root: save(store.root), history: store.hub.history.events };
  return Buffer.from(JSON.stringify(saved));
}

/** Replaces the store's contents with saved bytes. */
export function loadStore(store: V2Store, bytes: Uint8Array): void {
  const saved = JSON.parse(Buffer.from(bytes).toString("utf8")) as SavedStore;
  if (saved.version !== 1) throw new Error(`unknown v2 store format ${String(saved.version)}`);
  const load = (entry: SavedNode, parent: V2Node | undefined, path: string): V2Node => {
    const kind = entry.children !== undefined ? { dir: true as const } : { value: entry.value ?? "" };
    const node = new V2Node(path, entry.created, entry.modified, parent, kind, entry.expireAtMs);
    for (const child of entry.children ?? []) node.children!.set(child.name, load(child, node, `${path === "/" ? "" : path}/${child.name}`));
    return node;
  };
  store.root = load(saved.root, undefined, "/");
  store.currentIndex = saved.currentIndex;
  store.hub.history.events = saved.history;
}
