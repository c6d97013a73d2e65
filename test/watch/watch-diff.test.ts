import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { toJson } from "@bufbuild/protobuf";
import * as rpc from "../../src/gen/etcdserverpb/rpc_pb.js";
import { EventSchema } from "../../src/gen/mvccpb/kv_pb.js";
import { EtcdClient } from "../support/client.js";
import { startEtcd, startTetcd, type ServerProcess } from "../support/processes.js";
import { Random } from "../support/random.js";
import { checkStream } from "./checkers.js";
import { responsesOf, WatchClient, type RecordedStream } from "./watch-client.js";
import { nextStep, type WatchStep, type WorkloadState } from "./watch-workload.js";

/**
 * Differential test against the reference etcd 3.4: the same seeded steps
 * (writes, compactions, watch creates with every option, cancels, progress
 * requests) go to a fresh tetcd and a fresh etcd, and what each watcher
 * received must be the same: its control responses and its events, in order.
 * How many revisions one catch-up response carries depends on timing in etcd,
 * so events are compared one by one, not response by response.
 * Replay one seed with TETCD_WATCH_DIFF_SEEDS=<seed>.
 */
const seeds = (process.env["TETCD_WATCH_DIFF_SEEDS"] ?? "1,2").split(",").map(Number);
const stepsPerSeed = Number(process.env["TETCD_WATCH_DIFF_STEPS"] ?? "150");
/** etcd brings unsynced watchers up to date every 100 ms: a stream quiet this long has settled. */
const settleQuietMs = 300;

interface Target {
  kv: EtcdClient;
  watch: WatchClient;
  stream: RecordedStream;
}

function openTarget(server: ServerProcess): Target {
  const watch = new WatchClient(server.endpoint);
  return { kv: new EtcdClient(server.endpoint), watch, stream: watch.open() };
}

/** Runs a write or compaction on one target; returns the revision its header reports, or -1 on error. */
async function write(target: Target, step: WatchStep): Promise<number> {
  const bytes = (text: string) => Buffer.from(text, "latin1");
  let result;
  if (step.kind === "put") {
    result = await target.kv.kv.call("put", rpc.PutRequestSchema, { key: bytes(step.key), value: bytes(step.value) }, rpc.PutResponseSchema);
  } else if (step.kind === "deleteRange") {
    result = await target.kv.kv.call("deleteRange", rpc.DeleteRangeRequestSchema, { key: bytes(step.key), rangeEnd: bytes(step.end ?? "") }, rpc.DeleteRangeResponseSchema);
  } else if (step.kind === "txn") {
    const success = [
      ...step.puts.map((key) => ({ request: { case: "requestPut" as const, value: { key: bytes(key), value: bytes(`t${key}`) } } })),
      ...step.deletes.map((range) => ({ request: { case: "requestDeleteRange" as const, value: { key: bytes(range.key), rangeEnd: bytes(range.end ?? "") } } })),
    ];
    result = await target.kv.kv.call("txn", rpc.TxnRequestSchema, { success }, rpc.TxnResponseSchema);
  } else if (step.kind === "compact") {
    result = await target.kv.kv.call("compact", rpc.CompactionRequestSchema, { revision: BigInt(step.revision) }, rpc.CompactionResponseSchema);
  } else {
    throw new Error(`not a write: ${step.kind}`);
  }
  return result.ok ? Number(result.response.header?.revision ?? 0n) : -1;
}

/** Sends a watch request on one target and waits for the response it must bring. */
async function watchRequest(target: Target, step: WatchStep): Promise<void> {
  const { stream } = target;
  const before = stream.responses.length;
  const since = () => stream.responses.slice(before);
  if (step.kind === "watch") {
    stream.watch(step.request);
    await stream.waitFor(() => since().some((response) => response.created), "created");
  } else if (step.kind === "cancel") {
    stream.cancel(step.watchId);
    await stream.waitFor(() => since().some((response) => response.canceled && response.watchId === step.watchId), "canceled");
  } else if (step.kind === "progress") {
    stream.requestProgress();
    await stream.waitFor(() => since().some((response) => response.watchId === -1n), "progress");
  }
}

/** What one watcher received, response by response for control responses and event by event otherwise. */
function received(responses: rpc.WatchResponse[], watchId: bigint): string[] {
  const items: string[] = [];
  for (const response of responsesOf(responses, watchId)) {
    if (response.created || response.canceled || response.events.length === 0) {
      const { created, canceled, cancelReason, compactRevision } = response;
      items.push(JSON.stringify({ created, canceled, cancelReason, compactRevision: String(compactRevision), revision: String(response.header?.revision ?? 0n) }));
    }
    for (const event of response.events) items.push(JSON.stringify(toJson(EventSchema, event)));
  }
  return items;
}

/** Ids of watchers that are live: created and not canceled since. */
function liveWatchIds(responses: rpc.WatchResponse[]): bigint[] {
  const live = new Set<bigint>();
  for (const response of responses) {
    if (response.created && !response.canceled) live.add(response.watchId);
    else if (response.canceled) live.delete(response.watchId);
  }
  return [...live];
}

async function runSeed(seed: number): Promise<number> {
  const servers: ServerProcess[] = [];
  const targets: Target[] = [];
  try {
    servers.push(...(await Promise.all([startTetcd(), startEtcd()])));
    targets.push(...servers.map(openTarget));
    const [ours, reference] = targets as [Target, Target];
    const random = new Random(seed);
    const state: WorkloadState = { revision: 1, compactRevision: 0, watchIds: [] };
    for (let index = 0; index < stepsPerSeed; index++) {
      state.watchIds = liveWatchIds(reference.stream.responses);
      const step = nextStep(random, state);
      if (step.kind === "watch" || step.kind === "cancel" || step.kind === "progress") {
        await Promise.all(targets.map((target) => watchRequest(target, step)));
        const start = Number(step.kind === "watch" ? (step.request.startRevision ?? 0n) : 0n);
        // A watch from the past catches up on etcd's next 100 ms tick: let it, so that what follows does not race it.
        if (start > 0 && start <= state.revision) await Promise.all(targets.map((target) => target.stream.settle(settleQuietMs)));
        continue;
      }
      const [revision, referenceRevision] = await Promise.all([write(ours, step), write(reference, step)]);
      assert.equal(revision, referenceRevision, `seed ${seed} step ${index} (${step.kind}): revisions differ`);
      if (step.kind === "compact" && revision !== -1) state.compactRevision = step.revision;
      else if (revision !== -1) state.revision = Math.max(state.revision, revision);
    }
    await Promise.all(targets.map((target) => watchRequest(target, { kind: "progress" })));
    await Promise.all(targets.map((target) => target.stream.settle(settleQuietMs)));
    const ids = new Set([...ours.stream.responses, ...reference.stream.responses].map((response) => response.watchId));
    let compared = 0;
    for (const id of ids) {
      if (id === -1n) {
        // Failed creates and stream-wide progress responses: the first compared exactly, the second counted.
        const failedCreates = (responses: rpc.WatchResponse[]) => received(responses, id).filter((item) => item.includes('"created":true'));
        assert.deepEqual(failedCreates(ours.stream.responses), failedCreates(reference.stream.responses), `seed ${seed}: failed creates`);
        assert.equal(responsesOf(ours.stream.responses, id).length, responsesOf(reference.stream.responses, id).length, `seed ${seed}: stream-wide responses`);
        continue;
      }
      assert.deepEqual(received(ours.stream.responses, id), received(reference.stream.responses, id), `seed ${seed}: watcher ${id}`);
      assert.deepEqual(checkStream(responsesOf(ours.stream.responses, id)), [], `seed ${seed}: watcher ${id} stream properties`);
      compared++;
    }
    return compared;
  } finally {
    for (const target of targets) {
      target.watch.close();
      target.kv.close();
    }
    await Promise.all(servers.map((server) => server.stop()));
  }
}

describe("watch against etcd 3.4", () => {
  for (const seed of seeds) {
    test(`seed ${seed}: every watcher receives what etcd's receives`, async () => {
      const compared = await runSeed(seed);
      assert.ok(compared >= 5, `only ${compared} watchers compared`);
    });
  }
});
