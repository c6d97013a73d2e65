import type { KeyValue } from "../key-value.js";
import type { WatchStream } from "./watch-stream.js";

/** One event as a watcher sees it: a put or a delete, with the key before it when asked. */
export interface WatchEvent {
  type: "put" | "delete";
  kv: KeyValue;
  prevKv?: KeyValue;
}

/**
 * What the store hands to a stream for one watcher: events (none for a progress
 * notification), the revision the response is as of, and for a watcher canceled
 * because the history it needs was compacted, the compact revision.
 */
export interface WatcherResponse {
  watchId: number;
  events: WatchEvent[];
  revision: number;
  compactRevision: number;
}

/** Which events a watcher leaves out (etcd's NOPUT and NODELETE filters). */
export interface WatchFilters {
  noPut: boolean;
  noDelete: boolean;
}

/** A watch as created on a stream; keys are latin1 strings as in the store. */
export interface WatchRequest {
  /** 0 lets the stream choose an id. */
  id: number;
  key: string;
  /** undefined: the single key; "": every key from `key` on; otherwise the exclusive end. */
  end: string | undefined;
  /** First revision to deliver; 0 means the next one. */
  startRevision: number;
  filters: WatchFilters;
  prevKv: boolean;
}

/** Where a watcher is: caught up, catching up from history, or waiting for its stream to drain. */
export type WatcherGroupName = "synced" | "unsynced" | "victim";

/** One watcher: a key range, the next revision it needs, and its stream. */
export class Watcher {
  /** The lowest revision whose events this watcher has not been given yet. */
  nextRevision: number;
  group: WatcherGroupName | undefined;

  constructor(
    readonly id: number,
    readonly request: WatchRequest,
    readonly stream: WatchStream,
    nextRevision: number,
  ) {
    this.nextRevision = nextRevision;
  }

  contains(key: string): boolean {
    const { key: start, end } = this.request;
    if (end === undefined) return key === start;
    return key >= start && (end === "" || key < end);
  }

  /** The events this watcher wants among `events` (all in its range). */
  keep(events: WatchEvent[]): WatchEvent[] {
    const { noPut, noDelete } = this.request.filters;
    if (!noPut && !noDelete) return events;
    return events.filter((event) => (event.type === "put" ? !noPut : !noDelete));
  }
}

/** A put that made its key (the first version of a generation) has no previous key-value. */
export function isCreateEvent(event: WatchEvent): boolean {
  return event.type === "put" && event.kv.createRevision === event.kv.modRevision;
}
