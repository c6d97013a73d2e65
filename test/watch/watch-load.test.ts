import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { CompactionRequestSchema, CompactionResponseSchema, DeleteRangeRequestSchema, PutRequestSchema, PutResponseSchema, TxnRequestSchema, TxnResponseSchema } from "../../src/gen/etcdserverpb/rpc_pb.js";
import { EtcdClient } from "../support/client.js";
import { startTetcd, type ServerProcess } from "../support/processes.js";
import { Random } from "../support/random.js";
import { checkMatchesHistory, checkStream } from "./checkers.js";
import { historyFromRanges, prefixEnd } from "./history-oracle.js";
import { eventRevision, responsesOf, WatchClient, type RecordedStream } from "./watch-client.js";

/**
 * Recorded watch streams under concurrent load, with a consumer that stops
 * reading: every stream is checked (ordered, unique, atomic, bookmarkable) and
 * compared with the history the KV API reports (reliable), and watches opened
 * afterwards from past revisions see exactly that history (resumable).
 */
const writers = 4;
const operationsPerWriter = 120;
const prefix = "w/";
const keys = 12;
const bigValueBytes = 96 * 1024;

let tetcd: ServerProcess;
let kv: EtcdClient;
let watch: WatchClient;

before(async () => {
  tetcd = await startTetcd({ extraArgs: ["--experimental-watch-progress-notify-interval", "100ms"] });
  kv = new EtcdClient(tetcd.endpoint);
  watch = new WatchClient(tetcd.endpoint);
});

after(async () => {
  watch?.close();
  kv?.close();
  await tetcd?.stop();
});

function key(random: Random): Buffer {
  return Buffer.from(`${prefix}${random.int(0, keys - 1)}`);
}

/** One writer's random operations: puts (some large), multi-key txns, range deletes. */
async function runWriter(seed: number): Promise<number> {
  const random = new Random(seed);
  let last = 0;
  for (let step = 0; step < operationsPerWriter; step++) {
    const choice = random.next();
    if (choice < 0.55) {
      const value = Buffer.alloc(random.chance(0.2) ? bigValueBytes : random.int(1, 64), `v${seed}.${step}`);
      const result = await kv.kv.call("put", PutRequestSchema, { key: key(random), value }, PutResponseSchema);
      assert.ok(result.ok);
      last = Math.max(last, Number(result.response.header!.revision));
    } else if (choice < 0.85) {
      const first = random.int(0, keys - 3);
      const success = [
        { request: { case: "requestPut" as const, value: { key: Buffer.from(`${prefix}${first}`), value: Buffer.from(`t${seed}.${step}`) } } },
        { request: { case: "requestPut" as const, value: { key: Buffer.from(`${prefix}${first + 1}`), value: Buffer.from(`u${seed}.${step}`) } } },
        { request: { case: "requestDeleteRange" as const, value: { key: Buffer.from(`${prefix}${first + 2}`) } } },
      ];
      const result = await kv.kv.call("txn", TxnRequestSchema, { success }, TxnResponseSchema);
      assert.ok(result.ok);
    } else {
      const from = random.int(0, keys - 1);
      await kv.kv.call("deleteRange", DeleteRangeRequestSchema, { key: Buffer.from(`${prefix}${from}`), rangeEnd: Buffer.from(`${prefix}${from}~`) });
    }
  }
  return last;
}

/** Asks for a stream-wide progress response and waits for it: the stream then holds every event up to it. */
async function drain(stream: RecordedStream, revision: number): Promise<void> {
  const before = stream.responses.length;
  stream.requestProgress();
  await stream.waitFor(
    (responses) => responses.slice(before).some((response) => response.watchId === -1n && Number(response.header!.revision) >= revision),
    `progress at ${revision}`,
  );
}

async function currentRevision(): Promise<number> {
  const result = await kv.kv.call("put", PutRequestSchema, { key: Buffer.from("marker"), value: Buffer.from("m") }, PutResponseSchema);
  assert.ok(result.ok);
  return Number(result.response.header!.revision);
}

describe("watch streams under load", () => {
  test("every stream is ordered, unique, atomic, bookmarkable and equals the history; watches from past revisions resume exactly", async () => {
    const fast = watch.open();
    const slow = watch.open();
    const single = watch.open();
    fast.watch({ key: Buffer.from(prefix), rangeEnd: prefixEnd(prefix), progressNotify: true });
    slow.watch({ key: Buffer.from(prefix), rangeEnd: prefixEnd(prefix), progressNotify: true });
    single.watch({ key: Buffer.from(`${prefix}3`), progressNotify: true, prevKv: true });
    for (const stream of [fast, slow, single]) await stream.waitFor((responses) => responses.some((response) => response.created), "created");
    const start = Number(fast.responses[0]!.header!.revision) + 1;
    slow.pause();
    await Promise.all(Array.from({ length: writers }, (_, index) => runWriter(index + 1)));
    const end = await currentRevision();
    slow.resume();
    for (const stream of [fast, slow, single]) await drain(stream, end);

    const prefixHistory = (await historyFromRanges(kv, Buffer.from(prefix), prefixEnd(prefix), start, end)).filter((event) => event.revision >= start);
    assert.ok(prefixHistory.length > writers * operationsPerWriter / 2, "the workload made events");
    for (const [name, stream, history] of [
      ["fast", fast, prefixHistory],
      ["slow", slow, prefixHistory],
      ["single", single, prefixHistory.filter((event) => event.key === `${prefix}3`)],
    ] as const) {
      const own = responsesOf(stream.responses, 0n);
      assert.deepEqual(checkStream(own), [], `${name}: stream properties`);
      assert.deepEqual(checkMatchesHistory(own, history), [], `${name}: events equal the history`);
    }
    assert.ok(responsesOf(fast.responses, 0n).some((response) => response.events.length === 0 && !response.created), "progress notifications were sent");

    const random = new Random(99);
    for (const from of [start, random.int(start, end), end]) {
      const resumed = watch.open();
      resumed.watch({ key: Buffer.from(prefix), rangeEnd: prefixEnd(prefix), startRevision: BigInt(from) });
      await drain(resumed, end);
      const own = responsesOf(resumed.responses, 0n);
      assert.deepEqual(checkStream(own), [], `from ${from}: stream properties`);
      assert.deepEqual(checkMatchesHistory(own, prefixHistory.filter((event) => event.revision >= from)), [], `from ${from}: equals the history`);
      resumed.close();
    }
  });

  test("a consumer that stops reading never blocks writes or other watchers, and is canceled with the compact revision when its history is compacted", async () => {
    const bigPrefix = "big/";
    const stalled = watch.open();
    const reader = watch.open();
    for (const stream of [stalled, reader]) {
      stream.watch({ key: Buffer.from(bigPrefix), rangeEnd: prefixEnd(bigPrefix) });
      await stream.waitFor((responses) => responses.some((response) => response.created), "created");
    }
    stalled.pause();
    const revisions: number[] = [];
    const puts = 100;
    for (let index = 0; index < puts; index++) {
      const value = Buffer.alloc(bigValueBytes, index % 256);
      const result = await kv.kv.call("put", PutRequestSchema, { key: Buffer.from(`${bigPrefix}${index % 7}`), value }, PutResponseSchema);
      assert.ok(result.ok, "writes complete while a consumer is stalled");
      revisions.push(Number(result.response.header!.revision));
    }
    await reader.waitFor((responses) => responses.flatMap((response) => response.events).length === puts, "every event on the reading stream");
    assert.deepEqual(reader.responses.flatMap((response) => response.events).map(eventRevision), revisions);

    const compactRevision = revisions[revisions.length - 1]!;
    const compacted = await kv.kv.call("compact", CompactionRequestSchema, { revision: BigInt(compactRevision), physical: true }, CompactionResponseSchema);
    assert.ok(compacted.ok);
    stalled.resume();
    await stalled.waitFor((responses) => responses.some((response) => response.canceled), "the stalled watcher canceled");
    const canceled = stalled.responses.find((response) => response.canceled)!;
    assert.equal(canceled.compactRevision, BigInt(compactRevision));
    const received = stalled.responses.flatMap((response) => response.events).map(eventRevision);
    assert.ok(received.length < puts, "the stalled consumer did not get everything");
    assert.deepEqual(received, revisions.slice(0, received.length), "what it got is a gapless prefix of the history");
  });
});
