// Raft snapshots of the backend: made from an LMDB view while writes go on,
// and installed on another backend with the same records.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, test } from "node:test";
import { Lessor } from "../../src/lease/lessor.js";
import { Backend, bucketNames } from "../../src/mvcc/backend.js";
import { KvStore } from "../../src/mvcc/store.js";
import { ErrSnapshotTemporarilyUnavailable, type Snapshot } from "../../src/raft/index.js";
import { installBackendSnapshot, ServerRaftStorage, snapshotOfView } from "../../src/server/snapshot.js";
import { storeAppliedTerm, storeConfState, storeIds } from "../../src/server/storage.js";

let directory: string;
const opened: Backend[] = [];

/** Buffered writes reach LMDB only when flushed (or past 10,000 of them), never on a timer: what a view holds is then known. */
function openBackend(name: string): Backend {
  const backend = new Backend({ path: join(directory, name), mapSizeBytes: 256 * 1024 * 1024, batchIntervalMs: 600_000 });
  opened.push(backend);
  return backend;
}

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), "tetcd-snapshot-test-"));
});

afterEach(async () => {
  for (const backend of opened.splice(0)) await backend.close().catch(() => undefined);
  rmSync(directory, { recursive: true, force: true });
});

const confState = { voters: [1n, 2n, 3n], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };

/** One apply: `count` keys written with the applied index, term and configuration, as the member's apply writes them. */
function applyBatch(backend: Backend, store: KvStore, index: number, prefix: string, count: number): void {
  backend.write(() => {
    for (let position = 0; position < count; position++) backend.put("key", Buffer.from(`${prefix}${position}`), Buffer.from(`value of ${prefix}${position}`));
    store.setConsistentIndex(index);
    storeAppliedTerm(backend, 7);
    storeConfState(backend, confState);
  });
}

function recordsOf(backend: Backend): string[] {
  return bucketNames.flatMap((bucket) => backend.records(bucket).map(({ key, value }) => `${bucket}/${key.toString()}=${value.toString("hex")}`)).sort();
}

async function snapshotWhenReady(storage: ServerRaftStorage, whilePreparing: () => void): Promise<Snapshot> {
  assert.throws(() => storage.snapshot(), (error) => error === ErrSnapshotTemporarilyUnavailable, "the first ask starts the snapshot");
  whilePreparing();
  for (let attempt = 0; attempt < 500; attempt++) {
    try {
      return storage.snapshot();
    } catch (error) {
      if (error !== ErrSnapshotTemporarilyUnavailable) throw error;
      await sleep(10);
    }
  }
  throw new Error("the snapshot was never ready");
}

test("a snapshot is the backend at one applied index, without the applies made after it was asked for, and installs as the same records", async () => {
  const backend = openBackend("leader");
  const store = new KvStore(backend, new Lessor(backend));
  backend.write(() => storeIds(backend, 11n, 99n));
  applyBatch(backend, store, 40, "before/", 20_000);
  const storage = new ServerRaftStorage();
  storage.setSnapshotSource(backend, (error) => assert.fail(error));
  const expected = recordsOf(backend).filter((record) => !record.startsWith("meta/member="));

  // An apply made once the snapshot is asked for is not in it: the snapshot is the state LMDB held at index 40.
  const snapshot = await snapshotWhenReady(storage, () => setImmediate(() => applyBatch(backend, store, 41, "after/", 10)));
  assert.equal(backend.get("key", Buffer.from("after/0"))?.toString(), "value of after/0");
  assert.deepEqual(snapshot.metadata, { index: 40, term: 7, confState });

  const follower = openBackend("follower");
  follower.write(() => {
    storeIds(follower, 12n, 99n);
    follower.put("key", Buffer.from("stale"), Buffer.from("from an earlier life"));
  });
  follower.write(() => installBackendSnapshot(follower, snapshot.data));
  const installed = recordsOf(follower);
  assert.deepEqual(installed.filter((record) => !record.startsWith("meta/member=")), expected, "the records of index 40, none applied later");
  assert.ok(installed.some((record) => record.startsWith("meta/member=")), "the follower keeps its own ids");
  assert.equal(new KvStore(follower, new Lessor(follower)).consistentIndex(), 40);
  await storage.close();
});

test("a large view is read in chunks, between which other work, writes included, runs", async () => {
  const backend = openBackend("leader");
  const store = new KvStore(backend, new Lessor(backend));
  applyBatch(backend, store, 3, "many/", 9_000);
  const view = await backend.view();
  try {
    const pending = snapshotOfView(view);
    // Queued after the read started: it runs when the read yields after its first chunk.
    let wroteAt: number | undefined;
    let finished = false;
    setImmediate(() => {
      applyBatch(backend, store, 4, "between/", 1);
      wroteAt = finished ? -1 : 1;
    });
    const snapshot = await pending;
    finished = true;
    assert.equal(wroteAt, 1, "the write ran before the read finished");
    assert.equal(snapshot.metadata.index, 3);
    assert.ok(!Buffer.from(snapshot.data).includes(Buffer.from("between/0")), "the write is not in the view");
  } finally {
    view.done();
  }
});

test("a snapshot the log has moved past is made again; close waits for the one being made", async () => {
  const backend = openBackend("leader");
  const store = new KvStore(backend, new Lessor(backend));
  applyBatch(backend, store, 5, "a/", 10);
  const storage = new ServerRaftStorage();
  storage.setSnapshotSource(backend, (error) => assert.fail(error));
  assert.equal((await snapshotWhenReady(storage, () => {})).metadata.index, 5);

  // The log is compacted past index 5: that snapshot no longer lets a follower continue from the log.
  storage.applySnapshot({ data: new Uint8Array(0), metadata: { index: 9, term: 7, confState } });
  applyBatch(backend, store, 12, "b/", 10);
  assert.equal((await snapshotWhenReady(storage, () => {})).metadata.index, 12);

  storage.applySnapshot({ data: new Uint8Array(0), metadata: { index: 20, term: 7, confState } });
  assert.throws(() => storage.snapshot(), (error) => error === ErrSnapshotTemporarilyUnavailable);
  await storage.close();
  assert.throws(() => storage.snapshot(), (error) => error === ErrSnapshotTemporarilyUnavailable, "a closed storage makes no snapshot");
  await backend.close();
});
