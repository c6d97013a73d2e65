import assert from "node:assert/strict";
import { test } from "node:test";
import { KeyIndex, revisionKey, type KeyAtRevision } from "../../src/mvcc/key-index.js";
import type { Revision } from "../../src/mvcc/revision.js";
import { below, prng } from "../support/random.js";

const rev = (main: number, sub = 0): Revision => ({ main, sub });

function generationsOf(index: KeyIndex): string[][] {
  return index.generations.map((generation) => generation.revisions.map(revisionKey));
}

/** The doc comment's example: put 1.0, 2.0, delete 3.0, put 4.0, 5.0. */
function docExample(): KeyIndex {
  const index = new KeyIndex("foo");
  index.put(rev(1));
  index.put(rev(2));
  assert.ok(index.tombstone(rev(3)));
  index.put(rev(4));
  index.put(rev(5));
  return index;
}

/** etcd's newTestKeyIndex: three generations closed at 6, 12 and 16, and an empty one. */
function etcdTestKeyIndex(): KeyIndex {
  const index = new KeyIndex("foo");
  index.put(rev(2));
  index.put(rev(4));
  index.tombstone(rev(6));
  index.put(rev(8));
  index.put(rev(10));
  index.tombstone(rev(12));
  index.put(rev(14));
  index.put(rev(14, 1));
  index.tombstone(rev(16));
  return index;
}

test("the doc comment's example: generations {1.0, 2.0, 3.0(t)} and {4.0, 5.0}", () => {
  const index = docExample();
  assert.deepEqual(generationsOf(index), [["1.0", "2.0", "3.0"], ["4.0", "5.0"]]);
  assert.deepEqual(index.modified, rev(5));
});

test("the doc comment's example: compacting at 2 keeps {2.0, 3.0(t)} and {4.0, 5.0}", () => {
  const index = docExample();
  const available = new Set<string>();
  index.compact(2, available);
  assert.deepEqual(generationsOf(index), [["2.0", "3.0"], ["4.0", "5.0"]]);
  assert.deepEqual([...available], ["2.0"]);
  // Reads at or after the compaction point are unchanged.
  assert.deepEqual(index.get(2), { modified: rev(2), created: rev(1), version: 2 });
  assert.equal(index.get(3), undefined);
  assert.deepEqual(index.get(5), { modified: rev(5), created: rev(4), version: 2 });
});

test("the doc comment's example: compacting at 4 drops the first generation", () => {
  const index = docExample();
  const available = new Set<string>();
  index.compact(4, available);
  assert.deepEqual(generationsOf(index), [["4.0", "5.0"]]);
  assert.deepEqual([...available], ["4.0"]);
  // The same again from the state compacted at 2.
  const twice = docExample();
  twice.compact(2, new Set());
  const availableTwice = new Set<string>();
  twice.compact(4, availableTwice);
  assert.deepEqual(generationsOf(twice), [["4.0", "5.0"]]);
  assert.deepEqual([...availableTwice], ["4.0"]);
});

test("compacting at the tombstone drops the whole generation and its tombstone", () => {
  const index = docExample();
  const available = new Set<string>();
  index.compact(3, available);
  assert.deepEqual(generationsOf(index), [["4.0", "5.0"]]);
  assert.deepEqual([...available], []);
});

test("a key deleted at or before the compaction point ends up empty", () => {
  const index = new KeyIndex("foo");
  index.put(rev(1));
  index.put(rev(2));
  index.tombstone(rev(3));
  const available = new Set<string>();
  index.compact(3, available);
  assert.ok(index.isEmpty());
  assert.deepEqual([...available], []);
  const later = new KeyIndex("bar");
  later.put(rev(1));
  later.tombstone(rev(2));
  later.compact(7, new Set());
  assert.ok(later.isEmpty());
});

test("etcd's keyIndex get table, after compacting at 4", () => {
  const index = etcdTestKeyIndex();
  index.compact(4, new Set());
  const expected: Array<[number, KeyAtRevision | undefined]> = [
    [17, undefined],
    [16, undefined],
    [15, { modified: rev(14, 1), created: rev(14), version: 2 }],
    [14, { modified: rev(14, 1), created: rev(14), version: 2 }],
    [13, undefined],
    [12, undefined],
    [11, { modified: rev(10), created: rev(8), version: 2 }],
    [10, { modified: rev(10), created: rev(8), version: 2 }],
    [9, { modified: rev(8), created: rev(8), version: 1 }],
    [8, { modified: rev(8), created: rev(8), version: 1 }],
    [7, undefined],
    [6, undefined],
    [5, { modified: rev(4), created: rev(2), version: 2 }],
    [4, { modified: rev(4), created: rev(2), version: 2 }],
    [3, undefined],
    [2, undefined],
    [1, undefined],
    [0, undefined],
  ];
  for (const [atRevision, want] of expected) assert.deepEqual(index.get(atRevision), want, `get(${atRevision})`);
});

test("etcd's compact-and-keep table: what each compaction keeps, and keep agrees with compact", () => {
  // [compact at, generations left, revisions available]
  const table: Array<[number, string[][], string[]]> = [
    [1, [["2.0", "4.0", "6.0"], ["8.0", "10.0", "12.0"], ["14.0", "14.1", "16.0"], []], []],
    [2, [["2.0", "4.0", "6.0"], ["8.0", "10.0", "12.0"], ["14.0", "14.1", "16.0"], []], ["2.0"]],
    [3, [["2.0", "4.0", "6.0"], ["8.0", "10.0", "12.0"], ["14.0", "14.1", "16.0"], []], ["2.0"]],
    [4, [["4.0", "6.0"], ["8.0", "10.0", "12.0"], ["14.0", "14.1", "16.0"], []], ["4.0"]],
    [5, [["4.0", "6.0"], ["8.0", "10.0", "12.0"], ["14.0", "14.1", "16.0"], []], ["4.0"]],
    [6, [["8.0", "10.0", "12.0"], ["14.0", "14.1", "16.0"], []], []],
    [7, [["8.0", "10.0", "12.0"], ["14.0", "14.1", "16.0"], []], []],
    [8, [["8.0", "10.0", "12.0"], ["14.0", "14.1", "16.0"], []], ["8.0"]],
    [9, [["8.0", "10.0", "12.0"], ["14.0", "14.1", "16.0"], []], ["8.0"]],
    [10, [["10.0", "12.0"], ["14.0", "14.1", "16.0"], []], ["10.0"]],
    [11, [["10.0", "12.0"], ["14.0", "14.1", "16.0"], []], ["10.0"]],
    [12, [["14.0", "14.1", "16.0"], []], []],
    [13, [["14.0", "14.1", "16.0"], []], []],
    [14, [["14.1", "16.0"], []], ["14.1"]],
    [15, [["14.1", "16.0"], []], ["14.1"]],
    [16, [[]], []],
    [17, [[]], []],
  ];
  // Each compaction applied to a fresh index, and all of them in sequence to one index.
  const sequential = etcdTestKeyIndex();
  for (const [atRevision, generations, available] of table) {
    const fresh = etcdTestKeyIndex();
    const kept = new Set<string>();
    fresh.keep(atRevision, kept);
    assert.deepEqual(generationsOf(fresh), generationsOf(etcdTestKeyIndex()), `keep(${atRevision}) changes nothing`);
    assert.deepEqual([...kept].sort(), [...available].sort(), `keep(${atRevision})`);
    const compacted = new Set<string>();
    fresh.compact(atRevision, compacted);
    assert.deepEqual(generationsOf(fresh), generations, `compact(${atRevision})`);
    assert.deepEqual([...compacted].sort(), [...available].sort(), `compact(${atRevision}) available`);
    const sequentialAvailable = new Set<string>();
    sequential.compact(atRevision, sequentialAvailable);
    assert.deepEqual(generationsOf(sequential), generations, `sequential compact(${atRevision})`);
    assert.deepEqual([...sequentialAvailable].sort(), [...available].sort(), `sequential compact(${atRevision}) available`);
  }
  assert.ok(sequential.isEmpty());
});

test("put refuses a revision that is not after the last one; tombstone of a key not live changes nothing", () => {
  const index = new KeyIndex("foo");
  assert.equal(index.tombstone(rev(1)), false);
  index.put(rev(5));
  assert.throws(() => index.put(rev(5)));
  assert.throws(() => index.put(rev(4, 9)));
  index.put(rev(5, 1));
  assert.ok(index.tombstone(rev(6)));
  assert.equal(index.tombstone(rev(7)), false);
  assert.deepEqual(generationsOf(index), [["5.0", "5.1", "6.0"], []]);
  assert.throws(() => index.restoreFirst(rev(2), rev(8), 1), /restored twice/);
});

test("since lists one revision per main revision, the last sub of each", () => {
  const index = etcdTestKeyIndex();
  assert.deepEqual(index.since(9).map(revisionKey), ["10.0", "12.0", "14.1", "16.0"]);
  assert.deepEqual(index.since(1).map(revisionKey), ["2.0", "4.0", "6.0", "8.0", "10.0", "12.0", "14.1", "16.0"]);
  assert.deepEqual(index.since(17), []);
});

interface ModelEvent {
  revision: Revision;
  tombstone: boolean;
}

/** The key at `atRevision` computed from the plain list of events. */
function modelGet(events: ModelEvent[], atRevision: number): KeyAtRevision | undefined {
  let last = -1;
  for (let position = 0; position < events.length; position++) if (events[position]!.revision.main <= atRevision) last = position;
  if (last === -1 || events[last]!.tombstone) return undefined;
  let start = last;
  while (start > 0 && !events[start - 1]!.tombstone) start--;
  return { modified: events[last]!.revision, created: events[start]!.revision, version: last - start + 1 };
}

test("random histories: gets agree with a plain model before and after compactions", () => {
  const seed = 1337;
  const random = prng(seed);
  for (let round = 0; round < 300; round++) {
    const index = new KeyIndex("k");
    const events: ModelEvent[] = [];
    let main = 1;
    let compactedAt = 0;
    for (let step = 0; step < 40; step++) {
      main += 1 + below(random, 2);
      const live = index.generations.length > 0 && index.generations[index.generations.length - 1]!.revisions.length > 0;
      const action = below(random, 10);
      if (action < 2 && live) {
        assert.ok(index.tombstone(rev(main)));
        events.push({ revision: rev(main), tombstone: true });
      } else if (action < 8 || !live) {
        const subs = below(random, 3) === 0 ? 2 : 1;
        for (let sub = 0; sub < subs; sub++) {
          index.put(rev(main, sub));
          events.push({ revision: rev(main, sub), tombstone: false });
        }
      }
      if (below(random, 6) === 0 && main > compactedAt) {
        const at = compactedAt + 1 + below(random, main - compactedAt);
        const kept = new Set<string>();
        index.keep(at, kept);
        const available = new Set<string>();
        index.compact(at, available);
        const visible = modelGet(events, at);
        const context = `seed ${seed} round ${round} step ${step} compact(${at})`;
        assert.deepEqual([...available], visible === undefined ? [] : [revisionKey(visible.modified)], context);
        assert.deepEqual([...kept], [...available], context);
        // Nothing at or below `at` is held except what stays readable.
        for (const generation of index.generations) {
          for (const revision of generation.revisions) {
            assert.ok(revision.main > at || available.has(revisionKey(revision)), `${context}: ${revisionKey(revision)} kept`);
          }
        }
        const everLiveAfter = visible !== undefined || events.some((event) => event.revision.main > at && !event.tombstone);
        assert.equal(index.isEmpty(), !everLiveAfter, `${context}: isEmpty`);
        compactedAt = at;
      }
      for (let atRevision = compactedAt; atRevision <= main + 1; atRevision++) {
        assert.deepEqual(index.get(atRevision), modelGet(events, atRevision), `seed ${seed} round ${round} step ${step} get(${atRevision})`);
      }
    }
  }
});
