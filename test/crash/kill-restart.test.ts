import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { test } from "node:test";
import { CompactionRequestSchema, CompactionResponseSchema, PutRequestSchema, PutResponseSchema, RangeRequestSchema, RangeResponseSchema } from "../../src/gen/etcdserverpb/rpc_pb.js";
import { EtcdClient } from "../support/client.js";
import { startTetcd, temporaryDirectory, type ServerProcess } from "../support/processes.js";
import { prng } from "../support/random.js";

/** Limits of the crash test, in one place. */
const crashTest = {
  cycles: 10,
  writers: 16,
  keysPerWriter: 12,
  /** How long the writers run before the SIGKILL: a seeded draw in [min, min + spread). */
  runMsMin: 150,
  runMsSpread: 500,
  /** WAL purge every this many applied entries, so that crashes also hit segment rotation. */
  snapshotCount: 97,
  /**
   * Each cycle compacts this far behind the highest revision already checked, so that crashes also hit
   * compactions while every acknowledged put is still checked at its own revision once.
   */
  compactionLagRevisions: 150,
  testTimeoutMs: 110_000,
  callTimeoutMs: 10_000,
} as const;

interface Acknowledged {
  key: string;
  value: string;
  revision: number;
}

/** What the test knows of the store: every acknowledged put, and the put each writer had in flight when the server died. */
class History {
  readonly acknowledged: Acknowledged[] = [];
  readonly lastByKey = new Map<string, Acknowledged>();
  readonly inFlight = new Map<number, { key: string; value: string }>();
  highestRevision = 0;
  /** The highest compaction asked for, acknowledged or not: reads below it may fail. */
  compactionFloor = 0;
  /** The highest compaction acknowledged: reads below it must fail. */
  compactionAcknowledged = 0;

  acknowledge(write: Acknowledged): void {
    this.acknowledged.push(write);
    this.lastByKey.set(write.key, write);
    this.highestRevision = Math.max(this.highestRevision, write.revision);
  }
}

function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${crashTest.callTimeoutMs} ms`)), crashTest.callTimeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function rangeKey(client: EtcdClient, key: string, revision = 0) {
  const result = await withTimeout(client.kv.call("range", RangeRequestSchema, { key: Buffer.from(key), revision: BigInt(revision) }, RangeResponseSchema), `range ${key}`);
  if (!result.ok) throw new Error(`range ${key}@${revision} failed: ${result.code} ${result.message}`);
  return result.response;
}

/** Each writer puts to its own keys, one put at a time, until told to stop or the server goes away. */
async function runWriter(client: EtcdClient, writer: number, cycle: number, history: History, stopped: () => boolean): Promise<void> {
  for (let sequence = 0; !stopped(); sequence++) {
    const key = `crash/w${writer}/k${(cycle * 7 + sequence) % crashTest.keysPerWriter}`;
    const value = `c${cycle}-w${writer}-s${sequence}`;
    history.inFlight.set(writer, { key, value });
    const result = await withTimeout(client.kv.call("put", PutRequestSchema, { key: Buffer.from(key), value: Buffer.from(value) }, PutResponseSchema), `put ${key}`);
    if (!result.ok) return; // The server died under the put: its outcome is unknown.
    history.inFlight.delete(writer);
    history.acknowledge({ key, value, revision: Number(result.response.header!.revision) });
  }
}

/** Compacts at `revision` while the writers run; the server may die under it. */
async function compactAt(client: EtcdClient, history: History, revision: number): Promise<void> {
  if (revision <= history.compactionFloor) return;
  history.compactionFloor = revision;
  const result = await withTimeout(client.kv.call("compact", CompactionRequestSchema, { revision: BigInt(revision) }, CompactionResponseSchema), "compact");
  if (result.ok) history.compactionAcknowledged = Math.max(history.compactionAcknowledged, revision);
}

/** Checks every acknowledged write in `writes` is there at its revision with its value, unless compacted away. */
async function checkAcknowledged(client: EtcdClient, writes: Acknowledged[], history: History, context: string): Promise<void> {
  const missing: string[] = [];
  const batchSize = 64;
  for (let start = 0; start < writes.length; start += batchSize) {
    await Promise.all(
      writes.slice(start, start + batchSize).map(async (write) => {
        const request = { key: Buffer.from(write.key), revision: BigInt(write.revision) };
        const result = await withTimeout(client.kv.call("range", RangeRequestSchema, request, RangeResponseSchema), `range ${write.key}`);
        if (!result.ok) {
          if (write.revision >= history.compactionFloor || !/compacted/.test(result.message)) missing.push(`${write.key}=${write.value}@${write.revision} (range failed: ${result.code} ${result.message})`);
          return;
        }
        const kv = result.response.kvs[0];
        const found = kv === undefined ? "nothing" : `${Buffer.from(kv.value).toString()}@${kv.modRevision}`;
        if (kv === undefined || Buffer.from(kv.value).toString() !== write.value || Number(kv.modRevision) !== write.revision) {
          missing.push(`${write.key}=${write.value}@${write.revision} (found ${found})`);
        }
      }),
    );
  }
  assert.deepEqual(missing, [], `${context}: acknowledged writes lost or changed`);
}

/** Checks each key's current value: its last acknowledged put, or the put in flight at the crash if that one made it. */
async function checkLatest(client: EtcdClient, history: History, context: string): Promise<void> {
  const inFlightByKey = new Map([...history.inFlight.values()].map((put) => [put.key, put.value]));
  for (const [key, last] of history.lastByKey) {
    const response = await rangeKey(client, key);
    const kv = response.kvs[0];
    assert.ok(kv !== undefined, `${context}: ${key} is missing`);
    const value = Buffer.from(kv.value).toString();
    const modRevision = Number(kv.modRevision);
    if (value === last.value) {
      assert.equal(modRevision, last.revision, `${context}: ${key}`);
    } else {
      // Only the unacknowledged put in flight at the crash may have overwritten the last acknowledged one.
      assert.equal(value, inFlightByKey.get(key), `${context}: ${key} holds ${value}@${modRevision}, expected ${last.value}@${last.revision}`);
      assert.ok(modRevision > last.revision, `${context}: ${key} went back in time`);
      // The crash has settled its fate: from now on it is the key's latest write.
      history.lastByKey.set(key, { key, value, revision: modRevision });
      history.highestRevision = Math.max(history.highestRevision, modRevision);
    }
  }
}

test("every acknowledged put survives repeated SIGKILLs, at its revision", { timeout: crashTest.testTimeoutMs }, async (t) => {
  const seed = process.env.TETCD_CRASH_SEED !== undefined ? Number(process.env.TETCD_CRASH_SEED) : Math.floor(Math.random() * 2 ** 31);
  t.diagnostic(`crash test seed ${seed} (rerun with TETCD_CRASH_SEED=${seed})`);
  console.log(`crash test seed ${seed}`);
  const random = prng(seed);
  const dataDir = temporaryDirectory("tetcd-crash");
  const history = new History();
  let server: ServerProcess | undefined;
  let client: EtcdClient | undefined;
  const start = async (): Promise<void> => {
    server = await startTetcd({ dataDir, extraArgs: ["--snapshot-count", String(crashTest.snapshotCount)] });
    client = new EtcdClient(server.endpoint);
  };
  try {
    let observedRevision = 1;
    for (let cycle = 0; cycle < crashTest.cycles; cycle++) {
      await start();
      const context = `seed ${seed}, cycle ${cycle}`;
      // Everything acknowledged before the last crash is there, and the store has not gone back.
      const current = await rangeKey(client!, "crash/");
      const revision = Number(current.header!.revision);
      assert.ok(revision >= history.highestRevision, `${context}: revision ${revision} below acknowledged ${history.highestRevision}`);
      assert.ok(revision >= observedRevision, `${context}: revision ${revision} went back from ${observedRevision}`);
      observedRevision = revision;
      await checkLatest(client!, history, context);
      const firstNew = history.acknowledged.length;
      // Everything up to here has been checked at its revision: history below it may go.
      const compactionRevision = history.highestRevision - crashTest.compactionLagRevisions;
      history.inFlight.clear();
      let stop = false;
      const writers = Array.from({ length: crashTest.writers }, (_, writer) => runWriter(client!, writer, cycle, history, () => stop));
      const runMs = crashTest.runMsMin + Math.floor(random() * crashTest.runMsSpread);
      const compactAtMs = Math.floor(random() * runMs);
      await new Promise((resolve) => setTimeout(resolve, compactAtMs));
      const compaction = compactAt(client!, history, compactionRevision);
      await new Promise((resolve) => setTimeout(resolve, runMs - compactAtMs));
      // SIGKILL while writes are in flight; writers see their calls fail and stop.
      const killed = server!.stop("SIGKILL");
      stop = true;
      await killed;
      await Promise.all([...writers, compaction]);
      client!.close();
      client = undefined;
      assert.ok(history.acknowledged.length > firstNew, `${context}: some writes were acknowledged before the kill`);
      t.diagnostic(`cycle ${cycle}: ${history.acknowledged.length - firstNew} puts acknowledged, ${history.inFlight.size} in flight at the kill`);
      // Check this cycle's acknowledged writes right after the restart.
      await start();
      await checkAcknowledged(client!, history.acknowledged.slice(firstNew), history, context);
      const afterRestart = Number((await rangeKey(client!, "crash/")).header!.revision);
      assert.ok(afterRestart >= history.highestRevision, `${context}: revision ${afterRestart} below acknowledged ${history.highestRevision}`);
      observedRevision = afterRestart;
      await server!.stop("SIGKILL");
      client!.close();
      client = undefined;
    }
    // A last clean start: every acknowledged write of every cycle, each at a distinct revision.
    await start();
    const revisions = new Set(history.acknowledged.map((write) => write.revision));
    assert.equal(revisions.size, history.acknowledged.length, `seed ${seed}: two acknowledged puts share a revision`);
    await checkAcknowledged(client!, history.acknowledged, history, `seed ${seed}, final`);
    await checkLatest(client!, history, `seed ${seed}, final`);
    if (history.compactionAcknowledged > 1) {
      const below = await client!.kv.call("range", RangeRequestSchema, { key: Buffer.from("crash/"), revision: BigInt(history.compactionAcknowledged - 1) }, RangeResponseSchema);
      assert.ok(!below.ok && /compacted/.test(below.message), `seed ${seed}: the acknowledged compaction at ${history.compactionAcknowledged} was lost`);
    }
    t.diagnostic(`${history.acknowledged.length} acknowledged puts checked, highest revision ${history.highestRevision}, compacted at ${history.compactionAcknowledged}`);
  } finally {
    client?.close();
    await server?.stop("SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  }
});
