import assert from "node:assert/strict";
import { test } from "node:test";
import { TreeIndex } from "../../src/mvcc/tree-index.js";

function rangeKeys(index: TreeIndex, key: string, end: string | undefined, atRevision: number, limit = Infinity): string[] {
  const keys: string[] = [];
  index.range(key, end, atRevision, (found) => {
    keys.push(found);
    return keys.length < limit;
  });
  return keys;
}

/** a@2, b@3, c@4, b deleted @5, "\xff"@6, "a\x00"@7, c@8. */
function sample(): TreeIndex {
  const index = new TreeIndex();
  index.put("a", { main: 2, sub: 0 });
  index.put("b", { main: 3, sub: 0 });
  index.put("c", { main: 4, sub: 0 });
  assert.ok(index.tombstone("b", { main: 5, sub: 0 }));
  index.put("\xff", { main: 6, sub: 0 });
  index.put("a\x00", { main: 7, sub: 0 });
  index.put("c", { main: 8, sub: 0 });
  return index;
}

test("a single key, and a range [key, end) in byte order, at several revisions", () => {
  const index = sample();
  assert.deepEqual(index.get("c", 8), { modified: { main: 8, sub: 0 }, created: { main: 4, sub: 0 }, version: 2 });
  assert.equal(index.get("b", 8), undefined);
  assert.deepEqual(rangeKeys(index, "a", undefined, 8), ["a"]);
  assert.deepEqual(rangeKeys(index, "zz", undefined, 8), []);
  assert.deepEqual(rangeKeys(index, "a", "c", 8), ["a", "a\x00"]);
  assert.deepEqual(rangeKeys(index, "a", "c", 4), ["a", "b"]);
  assert.deepEqual(rangeKeys(index, "a", "", 8), ["a", "a\x00", "c", "\xff"]);
  assert.deepEqual(rangeKeys(index, "\x00", "", 3), ["a", "b"]);
  assert.deepEqual(rangeKeys(index, "b", "\xff", 8), ["c"]);
  assert.deepEqual(rangeKeys(index, "a", "", 8, 2), ["a", "a\x00"]);
  assert.equal(index.count("a", "", 8), 4);
  assert.equal(index.count("a", "", 5), 2);
  assert.equal(index.count("b", undefined, 4), 1);
  assert.equal(index.size, 5);
});

test("tombstone of a missing or deleted key returns false and changes nothing", () => {
  const index = sample();
  assert.equal(index.tombstone("nope", { main: 9, sub: 0 }), false);
  assert.equal(index.tombstone("b", { main: 9, sub: 0 }), false);
  assert.equal(index.size, 5);
  assert.equal(index.keyIndex("nope"), undefined);
});

test("compact removes keys left with no history and returns what stays readable", () => {
  const index = sample();
  const keep = index.keep(5);
  assert.equal(index.size, 5, "keep changes nothing");
  const available = index.compact(5);
  assert.deepEqual([...available].sort(), ["2.0", "4.0"]);
  assert.deepEqual([...keep].sort(), [...available].sort());
  assert.equal(index.size, 4, "b, deleted at 5, is gone");
  assert.equal(index.keyIndex("b"), undefined);
  assert.deepEqual(rangeKeys(index, "a", "", 5), ["a", "c"]);
  assert.deepEqual(rangeKeys(index, "a", "", 8), ["a", "a\x00", "c", "\xff"]);
  const later = index.compact(8);
  assert.deepEqual([...later].sort(), ["2.0", "6.0", "7.0", "8.0"]);
});

test("a range whose end is at or before its key is empty", () => {
  const index = sample();
  assert.deepEqual(rangeKeys(index, "c", "a", 8), []);
  assert.deepEqual(rangeKeys(index, "c", "c", 8), []);
  assert.equal(index.count("c", "b", 8), 0);
});
