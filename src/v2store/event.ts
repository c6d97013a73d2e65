import type { NodeJson } from "./node.js";

export type V2Action = "get" | "create" | "set" | "update" | "delete" | "compareAndSwap" | "compareAndDelete" | "expire";

/** What a v2 operation did: etcd's Event. `etcdIndex` is the store index to report in X-Etcd-Index. */
export interface V2Event {
  action: V2Action;
  node: NodeJson;
  prevNode?: NodeJson;
  /** A TTL refresh: kept in the history but never sent to watchers. */
  refresh?: true;
  etcdIndex: number;
}

/** The index of an event: its node's modified index. */
export function eventIndex(event: V2Event): number {
  return event.node.modifiedIndex ?? 0;
}

/** A 201 Created answer: a create, or a set that made a new node. */
export function isCreated(event: V2Event): boolean {
  return event.action === "create" || (event.action === "set" && event.prevNode === undefined);
}

/** The most recent events, for watches that start at an index in the past (etcd keeps 1,000). */
export const eventHistoryMax = 1000;

export class EventHistory {
  events: V2Event[] = [];

  get startIndex(): number {
    return this.events.length === 0 ? 0 : eventIndex(this.events[0]!);
  }

  get lastIndex(): number {
    return this.events.length === 0 ? 0 : eventIndex(this.events[this.events.length - 1]!);
  }

  add(event: V2Event): void {
    this.events.push(event);
    if (this.events.length > eventHistoryMax) this.events.splice(0, this.events.length - eventHistoryMax);
  }

  /**
   * The first event at or after `index` that a watch of `key` sees, undefined
   * when it is yet to come; a cleared index is the caller's error to raise.
   */
  scan(key: string, recursive: boolean, index: number): V2Event | undefined {
    const prefix = key.endsWith("/") ? key : `${key}/`;
    for (const event of this.events) {
      if (eventIndex(event) < index || event.refresh === true) continue;
      const eventKey = event.node.key ?? "";
      let matches = eventKey === key || (recursive && eventKey.startsWith(prefix));
      if ((event.action === "delete" || event.action === "expire") && event.prevNode?.dir === true) matches ||= key.startsWith(event.prevNode.key ?? "");
      if (matches) return event;
    }
    return undefined;
  }
}
