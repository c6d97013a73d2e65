import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, test } from "node:test";
import { Lessor } from "../../src/lease/lessor.js";
import { Backend } from "../../src/mvcc/backend.js";
import { KvStore, type Change } from "../../src/mvcc/store.js";
import { RecentHistory } from "../../src/mvcc/watch/history.js";
import { watchLimits } from "../../src/mvcc/watch/limits.js";
import { WatchableStore, type WatcherResponse, type WatchRequest, type WatchSink } from "../../src/mvcc/watchable-store.js";

/** A sink that records what it takes, and can be made to refuse (a client that stopped reading). */
class RecordingSink implements WatchSink {
  readonly responses: WatcherResponse[] = [];
  refusing = false;
  syncedCalls = 0;

  offer(response: WatcherResponse, required: boolean): boolean {
    if (this.refusing && !required) return false;
    this.responses.push(response);
    return true;
  }

  full(): boolean {
    return this.refusing;
  }

  synced(): void {
    this.syncedCalls++;
  }

  eventRevisions(watchId: number): number[] {
    return this.responses.filter((response) => response.watchId === watchId).flatMap((response) => response.events.map((event) => event.kv.modRevision));
  }
}

const waitTimeoutMs = 10_000;

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + waitTimeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function request(init: Partial<WatchRequest>): WatchRequest {
  return { id: 0, key: "k", end: undefined, startRevision: 0, filters: { noPut: false, noDelete: false }, prevKv: false, ...init };
}

let directory: string;
let backend: Backend;
let store: KvStore;
let watchable: WatchableStore;

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), "tetcd-watchable-"));
  backend = new Backend({ path: join(directory, "db"), mapSizeBytes: 256 * 1024 * 1024 });
  store = new KvStore(backend, new Lessor(backend));
  watchable = new WatchableStore(store);
});

afterEach(async () => {
  watchable.close();
  await store.compactionsDone();
  await backend.close();
  rmSync(directory, { recursive: true, force: true });
});

function put(key: string, value: string): number {
  return backend.write(() => {
    const transaction = store.write();
    transaction.put(key, Buffer.from(value), 0n);
    transaction.end();
    return store.currentRevision;
  });
}

function deleteKey(key: string): void {
  backend.write(() => {
    const transaction = store.write();
    transaction.deleteRange(key, undefined);
    transaction.end();
  });
}

describe("watchable store", () => {
  test("synced watchers get one response per revision, filtered, with previous values when asked, and a future start waits", () => {
    const sink = new RecordingSink();
    const stream = watchable.newStream(sink);
    const all = stream.watch(request({ key: "a", end: "" }));
    const noPut = stream.watch(request({ key: "k", filters: { noPut: true, noDelete: false }, prevKv: true }));
    const future = stream.watch(request({ key: "k", startRevision: store.currentRevision + 3 }));
    put("k", "1");
    put("k", "2");
    deleteKey("k");
    put("k", "3");
    assert.deepEqual(sink.eventRevisions(all), [2, 3, 4, 5]);
    assert.deepEqual(sink.eventRevisions(noPut), [4]);
    const deleted = sink.responses.find((response) => response.watchId === noPut)!;
    assert.equal(deleted.revision, 4);
    assert.equal(Buffer.from(deleted.events[0]!.prevKv!.value).toString(), "2");
    assert.deepEqual(sink.eventRevisions(future), [4, 5]);
    assert.ok(sink.responses.every((response) => response.events.every((event) => event.kv.modRevision === response.revision)));
  });

  test("a watcher whose stream refuses becomes a victim, writes go on, and it catches up once the stream has room", async () => {
    const slowSink = new RecordingSink();
    const fastSink = new RecordingSink();
    const slowStream = watchable.newStream(slowSink);
    const slow = slowStream.watch(request({ key: "k" }));
    const fast = watchable.newStream(fastSink).watch(request({ key: "k" }));
    put("k", "0");
    slowSink.refusing = true;
    const revisions = Array.from({ length: watchLimits.revisionsPerCatchUpResponse + 200 }, (_, index) => put("k", String(index)));
    assert.equal(watchable.stats().victims, 1);
    assert.deepEqual(fastSink.eventRevisions(fast), [2, ...revisions], "the other watcher is not held back");
    slowSink.refusing = false;
    slowStream.resume();
    await waitFor(() => slowSink.eventRevisions(slow).length === revisions.length + 1, "the victim to catch up");
    assert.deepEqual(slowSink.eventRevisions(slow), [2, ...revisions]);
    assert.ok(slowSink.responses.length >= 3, "the catch-up came in responses of at most revisionsPerCatchUpResponse revisions");
    assert.equal(watchable.stats().synced, 2);
    assert.ok(slowSink.syncedCalls >= 1, "the sink heard that its stream is synced again");
  });

  test("a victim whose history is compacted meanwhile is canceled with the compact revision", async () => {
    const sink = new RecordingSink();
    const stream = watchable.newStream(sink);
    const id = stream.watch(request({ key: "k" }));
    sink.refusing = true;
    for (let index = 0; index < 10; index++) put("k", String(index));
    backend.write(() => void store.compact(store.currentRevision));
    sink.refusing = false;
    stream.resume();
    await waitFor(() => sink.responses.some((response) => response.compactRevision !== 0), "the cancel");
    const canceled = sink.responses.find((response) => response.compactRevision !== 0)!;
    assert.equal(canceled.watchId, id);
    assert.equal(canceled.compactRevision, store.compactRevision);
    assert.equal(stream.watchers.size, 0);
    assert.deepEqual(watchable.stats(), { streams: 1, synced: 0, unsynced: 0, victims: 0 });
  });

  test("a watch from a past revision catches up from the backend when the recent changes no longer hold it", async () => {
    const revisions = Array.from({ length: watchLimits.recentRevisionsMax + 50 }, (_, index) => put(`k${index % 3}`, String(index)));
    const sink = new RecordingSink();
    const stream = watchable.newStream(sink);
    const id = stream.watch(request({ key: "k", end: "l", startRevision: 2 }));
    assert.equal(stream.allSynced(), false);
    await waitFor(() => stream.allSynced(), "the watcher to be synced");
    assert.deepEqual(sink.eventRevisions(id), revisions);
  });
});

describe("recent history", () => {
  const change = (revision: number, bytes: number): Change => ({ kv: { key: Buffer.from("k"), createRevision: revision, modRevision: revision, version: 1, value: Buffer.alloc(bytes), lease: 0n }, deleted: false });

  test("keeps the newest revisions within its count and byte limits, and slices what it covers", () => {
    const recent = new RecentHistory(3, 100);
    for (let revision = 2; revision <= 6; revision++) recent.add([change(revision, 10)], revision);
    assert.equal(recent.oldestRevision(), 4);
    assert.equal(recent.covers(4, 6), true);
    assert.equal(recent.covers(3, 6), false);
    assert.deepEqual(recent.slice(5, 6).map((item) => item.kv.modRevision), [5, 6]);
    recent.add([change(7, 95)], 7);
    assert.equal(recent.oldestRevision(), 7, "bytes over the limit evict older revisions");
    assert.throws(() => recent.add([change(9, 1)], 9), /revision 9 after 7/);
  });
});
