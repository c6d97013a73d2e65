import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, test } from "node:test";
import { Lessor } from "../../src/lease/lessor.js";
import { Backend } from "../../src/mvcc/backend.js";
import { ErrCompacted, ErrFutureRevision } from "../../src/mvcc/errors.js";
import { decodeKeyValue, encodeKeyValue, type KeyValue } from "../../src/mvcc/key-value.js";
import { bytesToRevision, isTombstoneKey, revisionToBytes } from "../../src/mvcc/revision.js";
import { KvStore, type Change, type RangeOptions, type WriteTransaction } from "../../src/mvcc/store.js";
import { crc32c } from "../../src/pkg/crc32c.js";
import { below, prng } from "../support/random.js";

/** A store over an LMDB file in a temporary directory, which can be closed and reopened. */
class Harness {
  backend!: Backend;
  lessor!: Lessor;
  store!: KvStore;

  constructor(readonly directory: string) {
    this.open();
  }

  open(): void {
    this.backend = new Backend({ path: join(this.directory, "db"), mapSizeBytes: 256 * 1024 * 1024 });
    this.lessor = new Lessor(this.backend);
    this.store = new KvStore(this.backend, this.lessor);
  }

  async close(): Promise<void> {
    await this.store.compactionsDone();
    await this.backend.close();
  }

  async reopen(): Promise<void> {
    await this.close();
    this.open();
  }

  write(body: (txn: WriteTransaction) => void): Change[] {
    return this.backend.write(() => {
      const txn = this.store.write();
      body(txn);
      return txn.end();
    });
  }

  put(key: string, value: string, lease = 0n): number {
    let revision = 0;
    this.write((txn) => (revision = txn.put(key, Buffer.from(value), lease)));
    return revision;
  }

  delete(key: string, end?: string): { deleted: number; revision: number } {
    let result = { deleted: 0, revision: 0 };
    this.write((txn) => (result = txn.deleteRange(key, end)));
    return result;
  }

  compact(revision: number): Promise<void> {
    return this.backend.write(() => this.store.compact(revision));
  }

  /** The key-values of a range as plain comparable tuples. */
  get(key: string, end?: string, options: RangeOptions = {}): Array<[string, string, number, number, number, string]> {
    return this.store.range(key, end, options).kvs.map(plain);
  }

  /** Every record in the `key` bucket as "main.sub" (with "t" for a tombstone), once the backend has them all. */
  async records(): Promise<string[]> {
    await this.backend.flushed();
    const result: string[] = [];
    this.backend.forEach("key", (key) => {
      const revision = bytesToRevision(key);
      result.push(`${revision.main}.${revision.sub}${isTombstoneKey(key) ? "t" : ""}`);
    });
    return result;
  }
}

function plain(kv: KeyValue): [string, string, number, number, number, string] {
  return [Buffer.from(kv.key).toString("latin1"), Buffer.from(kv.value).toString("latin1"), kv.createRevision, kv.modRevision, kv.version, String(kv.lease)];
}

/** The error `body` throws or rejects with (hashByRevision may be synchronous or asynchronous). */
async function failure(body: () => unknown): Promise<unknown> {
  try {
    await body();
  } catch (error) {
    return error;
  }
  return undefined;
}

let directory: string;
let harness: Harness;

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), "tetcd-store-test-"));
  harness = new Harness(directory);
});

afterEach(async () => {
  await harness.close().catch(() => undefined);
  rmSync(directory, { recursive: true, force: true });
});

test("an empty store is at revision 1 with nothing compacted", () => {
  assert.equal(harness.store.currentRevision, 1);
  assert.equal(harness.store.compactRevision, -1);
  assert.deepEqual(harness.store.range("a", ""), { kvs: [], count: 0, revision: 1 });
});

test("puts, overwrites and deletes each make one revision with etcd's create, mod and version", () => {
  assert.equal(harness.put("foo", "v1"), 2);
  assert.equal(harness.put("foo", "v2"), 3);
  assert.equal(harness.put("bar", "b"), 4);
  assert.deepEqual(harness.get("foo"), [["foo", "v2", 2, 3, 2, "0"]]);
  assert.deepEqual(harness.delete("foo"), { deleted: 1, revision: 5 });
  assert.deepEqual(harness.get("foo"), []);
  assert.deepEqual(harness.delete("foo"), { deleted: 0, revision: 5 }, "deleting nothing makes no revision");
  assert.equal(harness.store.currentRevision, 5);
  assert.equal(harness.put("foo", "v3"), 6);
  assert.deepEqual(harness.get("foo"), [["foo", "v3", 6, 6, 1, "0"]]);
  assert.deepEqual(harness.get("a", ""), [
    ["bar", "b", 4, 4, 1, "0"],
    ["foo", "v3", 6, 6, 1, "0"],
  ]);
  assert.equal(harness.store.range("a", "").revision, 6);
});

test("the backend holds each change under its revision, in etcd's KeyValue encoding", async () => {
  harness.put("foo", "v1");
  harness.put("foo", "");
  harness.delete("foo");
  assert.deepEqual(await harness.records(), ["2.0", "3.0", "4.0t"]);
  const second = harness.backend.get("key", revisionToBytes({ main: 3, sub: 0 }))!;
  assert.equal(second.toString("hex"), encodeKeyValue({ key: Buffer.from("foo"), createRevision: 2, modRevision: 3, version: 2, value: new Uint8Array(0), lease: 0n }).toString("hex"));
  const tombstone = harness.backend.get("key", revisionToBytes({ main: 4, sub: 0 }, true))!;
  assert.equal(tombstone.toString("hex"), "0a03666f6f", "a tombstone holds only the key");
});

test("a transaction's changes share one revision, numbered by sub, and it reads its own writes", async () => {
  harness.put("a", "1");
  harness.put("b", "1");
  const changes = harness.write((txn) => {
    assert.equal(txn.readRevision, 3);
    txn.put("c", Buffer.from("new"), 0n);
    assert.equal(txn.readRevision, 4);
    assert.deepEqual(txn.range("c", undefined).kvs.map(plain), [["c", "new", 4, 4, 1, "0"]]);
    assert.deepEqual(txn.deleteRange("a", "c"), { deleted: 2, revision: 4 });
    assert.deepEqual(txn.range("a", "").kvs.map(plain), [["c", "new", 4, 4, 1, "0"]]);
  });
  assert.deepEqual(
    changes.map((change) => [Buffer.from(change.kv.key).toString(), change.kv.modRevision, change.deleted]),
    [
      ["c", 4, false],
      ["a", 4, true],
      ["b", 4, true],
    ],
  );
  assert.deepEqual(await harness.records(), ["2.0", "3.0", "4.0", "4.1t", "4.2t"]);
  assert.equal(harness.store.currentRevision, 4);
  const readOnly = harness.write((txn) => {
    txn.range("a", "");
  });
  assert.deepEqual(readOnly, []);
  assert.equal(harness.store.currentRevision, 4, "a transaction that only reads makes no revision");
});

test("reads at an old revision see the store as it was then", () => {
  harness.put("k", "one"); // 2
  harness.put("k", "two"); // 3
  harness.put("other", "x"); // 4
  harness.delete("k"); // 5
  harness.put("k", "three"); // 6
  assert.deepEqual(harness.get("k", undefined, { revision: 2 }), [["k", "one", 2, 2, 1, "0"]]);
  assert.deepEqual(harness.get("k", undefined, { revision: 4 }), [["k", "two", 2, 3, 2, "0"]]);
  assert.deepEqual(harness.get("k", undefined, { revision: 5 }), []);
  assert.deepEqual(harness.get("k", undefined, { revision: 6 }), [["k", "three", 6, 6, 1, "0"]]);
  assert.deepEqual(harness.get("k", undefined, { revision: 1 }), []);
  assert.equal(harness.store.range("a", "", { revision: 3 }).revision, 6, "the header revision is the current one");
  assert.throws(() => harness.store.range("k", undefined, { revision: 7 }), (error) => error === ErrFutureRevision);
});

test("range limit caps the key-values but count covers the whole range; countOnly returns none", () => {
  for (const key of ["a", "b", "c", "d", "e"]) harness.put(key, key);
  const limited = harness.store.range("a", "", { limit: 2 });
  assert.deepEqual(limited.kvs.map((kv) => Buffer.from(kv.key).toString()), ["a", "b"]);
  assert.equal(limited.count, 5);
  assert.deepEqual(harness.store.range("b", "d", { countOnly: true }), { kvs: [], count: 2, revision: 6 });
  assert.equal(harness.store.range("a", "", { revision: 3 }).count, 2);
});

test("compaction: older reads fail, kept revisions stay readable, unreachable records leave the backend", async () => {
  harness.put("a", "a1"); // 2
  harness.put("a", "a2"); // 3
  harness.put("b", "b1"); // 4
  harness.delete("b"); // 5
  harness.put("c", "c1"); // 6
  harness.put("a", "a3"); // 7
  harness.put("d", "d1"); // 8
  harness.delete("d"); // 9
  const before = [5, 6, 7, 8, 9].map((revision) => harness.get("a", "", { revision }));
  await harness.compact(5);
  await harness.store.compactionsDone();
  assert.equal(harness.store.compactRevision, 5);
  for (const revision of [1, 2, 4]) {
    assert.throws(() => harness.store.range("a", "", { revision }), (error) => error === ErrCompacted, `read at ${revision}`);
  }
  assert.deepEqual([5, 6, 7, 8, 9].map((revision) => harness.get("a", "", { revision })), before);
  // a2 (3.0) is a's value at 5; b's generation ended at 5 and is gone.
  assert.deepEqual(await harness.records(), ["3.0", "6.0", "7.0", "8.0", "9.0t"]);
  assert.throws(() => harness.compact(5), (error) => error === ErrCompacted);
  assert.throws(() => harness.compact(4), (error) => error === ErrCompacted);
  assert.throws(() => harness.compact(10), (error) => error === ErrFutureRevision);
  await harness.compact(9);
  assert.deepEqual(await harness.records(), ["6.0", "7.0"]);
  assert.deepEqual(harness.get("a", ""), [
    ["a", "a3", 2, 7, 3, "0"],
    ["c", "c1", 6, 6, 1, "0"],
  ]);
  assert.equal(harness.store.keyCount, 2);
});

test("compaction of many records in batches removes every unreachable one", async () => {
  harness.write((txn) => {
    for (let index = 0; index < 1500; index++) txn.put(`key-${index}`, Buffer.from("x"), 0n);
  });
  for (let round = 0; round < 3; round++) {
    harness.write((txn) => {
      for (let index = 0; index < 1500; index++) txn.put(`key-${index}`, Buffer.from(`v${round}`), 0n);
    });
  }
  const current = harness.store.currentRevision;
  assert.equal(current, 5);
  await harness.compact(current);
  assert.equal((await harness.records()).length, 1500);
  assert.ok((await harness.records()).every((record) => record.startsWith("5.")));
  assert.equal(harness.store.range("key-", "key.", { countOnly: true }).count, 1500);
});

test("a random history reads the same at every revision after reopening, with the same revisions", async () => {
  const seed = 9001;
  const random = prng(seed);
  const keys = ["a", "b", "c", "d", "e", "f", "g\x00", "\xfe"];
  for (let step = 0; step < 300; step++) {
    const action = below(random, 10);
    if (action < 6) {
      harness.put(keys[below(random, keys.length)]!, `v${step}`);
    } else if (action < 8) {
      harness.delete(keys[below(random, keys.length)]!);
    } else if (action < 9) {
      harness.write((txn) => {
        txn.put(keys[below(random, 4)]!, Buffer.from(`t${step}`), 0n);
        txn.deleteRange(keys[4 + below(random, 4)]!, undefined);
      });
    } else if (harness.store.currentRevision > harness.store.compactRevision + 1) {
      const floor = Math.max(harness.store.compactRevision + 1, 1);
      await harness.compact(floor + below(random, harness.store.currentRevision - floor + 1));
    }
  }
  const current = harness.store.currentRevision;
  const compacted = harness.store.compactRevision;
  assert.ok(compacted > 1, `seed ${seed}: some compaction happened`);
  const snapshot = (): unknown[] => {
    const views: unknown[] = [];
    for (let revision = Math.max(compacted, 1); revision <= current; revision++) views.push(harness.store.range("\x00", "", { revision }));
    return views;
  };
  const before = snapshot();
  const keyCount = harness.store.keyCount;
  await harness.reopen();
  assert.equal(harness.store.currentRevision, current, `seed ${seed}`);
  assert.equal(harness.store.compactRevision, compacted, `seed ${seed}`);
  assert.equal(harness.store.keyCount, keyCount, `seed ${seed}: same keys in the index`);
  assert.deepEqual(snapshot(), before, `seed ${seed}`);
  assert.throws(() => harness.store.range("a", "", { revision: compacted - 1 }), (error) => error === ErrCompacted);
});

test("after reopening, a put continues the key's history: same create revision, next version", async () => {
  harness.put("foo", "1"); // 2
  harness.put("foo", "2"); // 3
  harness.put("foo", "3"); // 4
  harness.put("bar", "1"); // 5
  await harness.compact(4); // removes foo@2 and foo@3
  await harness.reopen();
  harness.put("foo", "4"); // 6
  assert.deepEqual(harness.get("foo"), [["foo", "4", 2, 6, 4, "0"]]);
  harness.put("bar", "2"); // 7
  assert.deepEqual(harness.get("bar"), [["bar", "2", 5, 7, 2, "0"]]);
});

test("after reopening without compaction, puts continue create revision and version", async () => {
  harness.put("foo", "1");
  harness.put("foo", "2");
  harness.delete("foo");
  harness.put("foo", "3");
  await harness.reopen();
  harness.put("foo", "4");
  assert.deepEqual(harness.get("foo"), [["foo", "4", 5, 6, 2, "0"]]);
});

test("an empty store reopens at revision 1; a store whose newest records were compacted away keeps its revision", async () => {
  await harness.reopen();
  assert.equal(harness.store.currentRevision, 1);
  harness.put("x", "1"); // 2
  harness.delete("x"); // 3
  await harness.compact(3);
  assert.deepEqual(await harness.records(), []);
  await harness.reopen();
  assert.equal(harness.store.currentRevision, 3);
  assert.equal(harness.store.compactRevision, 3);
  assert.equal(harness.put("x", "2"), 4);
  assert.deepEqual(harness.get("x"), [["x", "2", 4, 4, 1, "0"]]);
});

test("a compaction scheduled but not finished before a crash is finished on reopen", async () => {
  harness.put("a", "1"); // 2
  harness.put("a", "2"); // 3
  harness.put("b", "1"); // 4
  harness.delete("b"); // 5
  harness.put("a", "3"); // 6
  // What a crash leaves after the compaction's entry committed but before its records were removed:
  // etcd's meta key scheduledCompactRev, no finishedCompactRev.
  harness.backend.write(() => harness.backend.put("meta", Buffer.from("scheduledCompactRev"), revisionToBytes({ main: 5, sub: 0 })));
  await harness.reopen();
  assert.equal(harness.store.compactRevision, 5);
  await harness.store.compactionsDone();
  assert.deepEqual(await harness.records(), ["3.0", "6.0"]);
  assert.throws(() => harness.store.range("a", "", { revision: 4 }), (error) => error === ErrCompacted);
  assert.deepEqual(harness.get("a", "", { revision: 5 }), [["a", "2", 2, 3, 2, "0"]]);
  await harness.reopen();
  assert.equal(harness.store.compactRevision, 5);
  assert.equal(harness.store.currentRevision, 6);
});

/**
 * etcd's HashKV (mvcc HashByRev), computed from the backend alone: CRC-32C of
 * "key", then of each record's key and value up to `atRevision`, skipping
 * records at or below the compact revision that are not some key's visible
 * revision at `atRevision` (unless no key is visible then).
 */
function etcdHashKv(backend: Backend, atRevision: number, compactRevision: number): number {
  const records: Array<{ key: Buffer; value: Buffer; main: number; name: string; tombstone: boolean }> = [];
  backend.forEach("key", (key, value) => {
    const revision = bytesToRevision(key);
    records.push({ key: Buffer.from(key), value: Buffer.from(value), main: revision.main, name: Buffer.from(decodeKeyValue(value).key).toString("latin1"), tombstone: isTombstoneKey(key) });
  });
  const visible = new Map<string, string>();
  for (const record of records) {
    if (record.main > atRevision) continue;
    if (record.tombstone) visible.delete(record.name);
    else visible.set(record.name, record.key.toString("hex"));
  }
  const keep = new Set(visible.values());
  let hash = crc32c(Buffer.from("key"));
  for (const record of records) {
    if (record.main > atRevision) continue;
    if (record.main <= compactRevision && keep.size > 0 && !keep.has(record.key.toString("hex"))) continue;
    hash = crc32c(record.value, crc32c(record.key, hash));
  }
  return hash;
}

test("hashByRevision is etcd's HashKV, the same before and after reopening", async () => {
  const random = prng(31337);
  for (let step = 0; step < 120; step++) {
    if (below(random, 5) === 0) harness.delete(`k${below(random, 6)}`);
    else harness.put(`k${below(random, 6)}`, `v${step}`);
  }
  await harness.compact(Math.floor(harness.store.currentRevision / 2));
  for (let step = 0; step < 30; step++) harness.put(`k${below(random, 6)}`, `w${step}`);
  const store = harness.store;
  const revisions = [0, store.compactRevision + 1, store.compactRevision + 7, store.currentRevision - 3, store.currentRevision];
  const before = await Promise.all(revisions.map((revision) => store.hashByRevision(revision)));
  await harness.backend.flushed();
  before.forEach((result, position) => {
    const atRevision = revisions[position] === 0 ? store.currentRevision : revisions[position]!;
    assert.equal(result.hash, etcdHashKv(harness.backend, atRevision, store.compactRevision), `hash at ${atRevision}`);
    assert.equal(result.currentRevision, store.currentRevision);
    assert.equal(result.compactRevision, store.compactRevision);
  });
  assert.equal(new Set(before.map((result) => result.hash)).size, revisions.length - 1, "different revisions hash differently (0 is the current)");
  await harness.reopen();
  assert.deepEqual(await Promise.all(revisions.map((revision) => harness.store.hashByRevision(revision))), before);
  assert.equal(await failure(() => harness.store.hashByRevision(harness.store.compactRevision)), ErrCompacted);
  assert.equal(await failure(() => harness.store.hashByRevision(harness.store.currentRevision + 1)), ErrFutureRevision);
});

test("hashByRevision does not change when a compaction's records leave the backend", async () => {
  for (let step = 0; step < 20; step++) harness.put(`k${step % 4}`, `v${step}`); // revisions 2..21
  let pending: Promise<void> | undefined;
  const during = await harness.backend.write(() => {
    pending = harness.store.compact(15);
    return harness.store.hashByRevision(21);
  });
  await pending;
  assert.equal((await harness.records()).length, 4 + 6, "records 16..21 and the last of each key at or before 15");
  assert.deepEqual(await harness.store.hashByRevision(21), during);
});

test("keys attached to leases are attached again on reopen; deleted or overwritten keys are not", async () => {
  const lease = 0x1234_5678_9abcn;
  const negative = -7n;
  harness.backend.write(() => {
    harness.lessor.grant(lease, 60);
    harness.lessor.grant(negative, 60);
  });
  harness.put("held", "1", lease);
  harness.put("gone", "1", lease);
  harness.put("moved", "1", lease);
  harness.put("neg", "1", negative);
  harness.delete("gone");
  harness.put("moved", "2");
  assert.deepEqual(harness.get("neg"), [["neg", "1", 5, 5, 1, "-7"]]);
  await harness.reopen();
  assert.equal(harness.lessor.leaseOf("held"), lease);
  assert.equal(harness.lessor.leaseOf("neg"), negative);
  assert.equal(harness.lessor.leaseOf("gone"), 0n);
  assert.equal(harness.lessor.leaseOf("moved"), 0n);
  assert.deepEqual([...harness.lessor.get(lease)!.keys], ["held"]);
  assert.deepEqual(harness.get("neg"), [["neg", "1", 5, 5, 1, "-7"]]);
});
