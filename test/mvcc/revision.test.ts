import assert from "node:assert/strict";
import { test } from "node:test";
import {
  bytesToRevision,
  compareRevisions,
  isTombstoneKey,
  mainRevisionPrefix,
  markedRevisionBytesLength,
  revisionBytesLength,
  revisionToBytes,
  type Revision,
} from "../../src/mvcc/revision.js";
import { below, prng } from "../support/random.js";

test("a revision is 8 bytes of main big-endian, '_', 8 bytes of sub; a tombstone adds 't'", () => {
  const bytes = revisionToBytes({ main: 0x0102030405, sub: 7 });
  assert.equal(bytes.length, revisionBytesLength);
  assert.equal(bytes.toString("hex"), "0000000102030405" + "5f" + "0000000000000007");
  const tombstone = revisionToBytes({ main: 5, sub: 1 }, true);
  assert.equal(tombstone.length, markedRevisionBytesLength);
  assert.equal(tombstone.toString("hex"), "0000000000000005" + "5f" + "0000000000000001" + "74");
  assert.ok(isTombstoneKey(tombstone));
  assert.ok(!isTombstoneKey(bytes));
  assert.deepEqual(bytesToRevision(tombstone), { main: 5, sub: 1 });
});

test("bytes round-trip, and byte order is revision order", () => {
  const seed = 4242;
  const random = prng(seed);
  const pick = (): Revision => {
    const big = random() < 0.2;
    return { main: big ? Number.MAX_SAFE_INTEGER - below(random, 2 ** 33) : below(random, 1000), sub: below(random, 3) === 0 ? 2 ** 32 + below(random, 5) : below(random, 300) };
  };
  for (let round = 0; round < 5000; round++) {
    const a = pick();
    const b = pick();
    assert.deepEqual(bytesToRevision(revisionToBytes(a)), a);
    const byBytes = Math.sign(Buffer.compare(revisionToBytes(a), revisionToBytes(b)));
    assert.equal(byBytes, compareRevisions(a, b), `seed ${seed}: ${JSON.stringify([a, b])}`);
    // A tombstone sorts right after the same revision and before the next.
    assert.equal(Buffer.compare(revisionToBytes(a), revisionToBytes(a, true)), -1);
  }
});

test("mainRevisionPrefix sorts before every revision of that main and after every earlier one", () => {
  for (const main of [0, 1, 255, 256, 2 ** 32, Number.MAX_SAFE_INTEGER - 1]) {
    const prefix = mainRevisionPrefix(main + 1);
    assert.equal(Buffer.compare(prefix, revisionToBytes({ main: main + 1, sub: 0 })), -1);
    assert.equal(Buffer.compare(revisionToBytes({ main, sub: Number.MAX_SAFE_INTEGER }, true), prefix), -1);
  }
});

test("compareRevisions orders by main, then sub", () => {
  assert.equal(compareRevisions({ main: 1, sub: 9 }, { main: 2, sub: 0 }), -1);
  assert.equal(compareRevisions({ main: 2, sub: 1 }, { main: 2, sub: 0 }), 1);
  assert.equal(compareRevisions({ main: 2, sub: 1 }, { main: 2, sub: 1 }), 0);
});

test("revisions that do not fit are refused", () => {
  assert.throws(() => revisionToBytes({ main: -1, sub: 0 }));
  assert.throws(() => revisionToBytes({ main: 1.5, sub: 0 }));
  assert.throws(() => revisionToBytes({ main: 2 ** 53, sub: 0 }));
  assert.throws(() => bytesToRevision(Buffer.alloc(16)));
  assert.throws(() => bytesToRevision(Buffer.from("ffffffffffffffff5f0000000000000000", "hex")), /2\^53/);
});
