import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { V2Error } from "../../src/v2store/errors.js";
import { eventHistoryMax } from "../../src/v2store/event.js";
import { loadStore, saveStore } from "../../src/v2store/persist.js";
import { V2Store } from "../../src/v2store/store.js";

/** The v2 store alone: a fixed clock, no server. */
const nowMs = Date.UTC(2030, 0, 1);
const newStore = () => new V2Store(new Set(["/", "/0", "/1"]), () => nowMs);

function v2Error(body: () => unknown): V2Error {
  try {
    body();
  } catch (error) {
    if (error instanceof V2Error) return error;
    throw error;
  }
  throw new Error("no V2Error");
}

describe("v2 store", () => {
  test("set, create, update, compare-and-swap and delete number their changes and keep the previous node", () => {
    const store = newStore();
    assert.equal(store.set("/1/a", false, "x", {}).node.modifiedIndex, 1);
    assert.equal(v2Error(() => store.createNode("/1/a", false, "y", false, {})).errorCode, 105);
    const updated = store.update("/1/a", "y", {});
    assert.deepEqual([updated.action, updated.node.modifiedIndex, updated.node.createdIndex, updated.prevNode?.value], ["update", 2, 1, "x"]);
    const failed = v2Error(() => store.compareAndSwap("/1/a", "nope", 7, "z", {}));
    assert.deepEqual([failed.errorCode, failed.errorCause, failed.index], [101, "[nope != y] [7 != 2]", 2]);
    assert.equal(store.compareAndSwap("/1/a", "y", 0, "z", {}).node.value, "z");
    assert.equal(v2Error(() => store.set("/1/a/b", false, "v", {})).errorCode, 104);
    assert.equal(store.delete("/1/a", false, false).action, "delete");
    assert.equal(v2Error(() => store.get("/1/a", false, false)).errorCode, 100);
    assert.equal(store.currentIndex, 4);
  });

  test("a directory is deleted only when asked for, recursively when not empty; the root and top directories never", () => {
    const store = newStore();
    store.set("/1/d/e", false, "v", {});
    assert.equal(v2Error(() => store.delete("/1/d", false, false)).errorCode, 102);
    assert.equal(v2Error(() => store.delete("/1/d", true, false)).errorCode, 108);
    assert.equal(store.delete("/1/d", true, true).node.dir, true);
    assert.equal(v2Error(() => store.delete("/1", true, true)).errorCode, 107);
  });

  test("hidden keys stay out of listings; a watcher of a directory sees a deletion of its parent", async () => {
    const store = newStore();
    store.set("/1/d/_hidden", false, "h", {});
    store.set("/1/d/seen", false, "s", {});
    assert.deepEqual(store.get("/1/d", false, true).node.nodes?.map((node) => node.key), ["/1/d/seen"]);
    const watcher = store.watch("/1/d/seen", false, false, 0);
    store.delete("/1/d", true, true);
    const event = await watcher.next();
    assert.deepEqual([event?.action, event?.node.key], ["delete", "/1/d"]);
  });

  test("the history keeps the last 1,000 events; an older index is cleared", async () => {
    const store = newStore();
    for (let round = 0; round < eventHistoryMax + 5; round++) store.set("/1/k", false, String(round), {});
    const cleared = v2Error(() => store.watch("/1/k", false, false, 3));
    assert.deepEqual([cleared.errorCode, cleared.errorCause], [401, "the requested history has been cleared [6/3]"]);
    const answered = await store.watch("/1/k", false, false, 6).next();
    assert.equal(answered?.node.value, "5");
  });

  test("nodes expire at the SYNC time they are due, soonest first, as 'expire' events", () => {
    const store = newStore();
    store.set("/1/late", false, "l", { expireAtMs: nowMs + 5000 });
    store.set("/1/soon", false, "s", { expireAtMs: nowMs + 1000 });
    store.deleteExpired(nowMs + 2000);
    assert.equal(v2Error(() => store.get("/1/soon", false, false)).errorCode, 100);
    assert.equal(store.get("/1/late", false, false).node.ttl, 5);
    assert.equal(store.hub.history.events.at(-1)?.action, "expire");
    assert.equal(store.hasTtlKeys(), true);
  });

  test("saved and loaded, a store answers the same, history included", async () => {
    const store = newStore();
    store.set("/1/a/b", false, "x", { expireAtMs: nowMs + 60_000 });
    store.createNode("/1/q", false, "job", true, {});
    const copy = newStore();
    loadStore(copy, saveStore(store));
    assert.deepEqual(copy.get("/1", true, true), store.get("/1", true, true));
    assert.equal(copy.currentIndex, store.currentIndex);
    assert.equal((await copy.watch("/1/a/b", false, false, 1).next())?.node.value, "x");
  });
});
