import type { WatchResponse } from "../../src/gen/etcdserverpb/rpc_pb.js";
import { Event_EventType, type Event } from "../../src/gen/mvccpb/kv_pb.js";
import { eventRevision } from "./watch-client.js";

/**
 * Checkers over the recorded responses of one watcher (created, canceled and
 * progress responses included). Each returns the violations it found, as
 * readable lines; an empty list means the property holds.
 */

/** An event reduced to what the history determines: revision, type, key and (for puts) the key-value. */
export interface HistoryEvent {
  revision: number;
  type: "PUT" | "DELETE";
  key: string;
  value: string;
  createRevision: number;
  version: number;
}

export function toHistoryEvent(event: Event): HistoryEvent {
  const kv = event.kv!;
  const put = event.type === Event_EventType.PUT;
  return {
    revision: Number(kv.modRevision),
    type: put ? "PUT" : "DELETE",
    key: Buffer.from(kv.key).toString("latin1"),
    value: put ? Buffer.from(kv.value).toString("latin1") : "",
    createRevision: put ? Number(kv.createRevision) : 0,
    version: put ? Number(kv.version) : 0,
  };
}

export function eventsOf(responses: WatchResponse[]): Event[] {
  return responses.flatMap((response) => response.events);
}

function isProgress(response: WatchResponse): boolean {
  return response.events.length === 0 && !response.created && !response.canceled;
}

/** Revisions never go back. */
export function checkOrdered(responses: WatchResponse[]): string[] {
  const violations: string[] = [];
  let last = 0;
  for (const event of eventsOf(responses)) {
    const revision = eventRevision(event);
    if (revision < last) violations.push(`event at ${revision} after one at ${last}`);
    last = Math.max(last, revision);
  }
  return violations;
}

/** No key changes twice at one revision: no event is delivered twice. */
export function checkUnique(responses: WatchResponse[]): string[] {
  const seen = new Set<string>();
  const violations: string[] = [];
  for (const event of eventsOf(responses)) {
    const id = `${eventRevision(event)}/${Buffer.from(event.kv!.key).toString("latin1")}`;
    if (seen.has(id)) violations.push(`duplicate event ${id}`);
    seen.add(id);
  }
  return violations;
}

/** The events of one revision arrive in one response (or one chain of fragments). */
export function checkAtomic(responses: WatchResponse[]): string[] {
  const violations: string[] = [];
  const responseOfRevision = new Map<number, number>();
  let chain = 0;
  for (const response of responses) {
    for (const event of response.events) {
      const revision = eventRevision(event);
      const previous = responseOfRevision.get(revision);
      if (previous !== undefined && previous !== chain) violations.push(`revision ${revision} split across responses`);
      responseOfRevision.set(revision, chain);
    }
    if (!response.fragment) chain++;
  }
  return violations;
}

/** After a progress notification at revision R, no event at or below R follows. */
export function checkBookmarkable(responses: WatchResponse[]): string[] {
  const violations: string[] = [];
  let bookmark = 0;
  for (const response of responses) {
    if (isProgress(response)) {
      bookmark = Math.max(bookmark, Number(response.header?.revision ?? 0n));
      continue;
    }
    for (const event of response.events) {
      const revision = eventRevision(event);
      if (revision <= bookmark) violations.push(`event at ${revision} after progress at ${bookmark}`);
    }
  }
  return violations;
}

/**
 * The events equal the history: the same changes, revision by revision (inside
 * one revision, in key order: the history from ranges cannot tell their order).
 */
export function checkMatchesHistory(responses: WatchResponse[], history: HistoryEvent[]): string[] {
  const received = eventsOf(responses).map(toHistoryEvent);
  const normalize = (events: HistoryEvent[]) =>
    [...events].sort((a, b) => a.revision - b.revision || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)).map((event) => JSON.stringify(event));
  const got = normalize(received);
  const expected = normalize(history);
  const violations: string[] = [];
  const length = Math.max(got.length, expected.length);
  for (let index = 0; index < length && violations.length < 5; index++) {
    if (got[index] !== expected[index]) violations.push(`event ${index}: got ${got[index] ?? "nothing"}, history has ${expected[index] ?? "nothing"}`);
  }
  return violations;
}

/** Every property that holds for any watcher, whatever its range. */
export function checkStream(responses: WatchResponse[]): string[] {
  return [...checkOrdered(responses), ...checkUnique(responses), ...checkAtomic(responses), ...checkBookmarkable(responses)];
}
