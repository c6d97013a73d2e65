// Histories recorded from concurrent clients against 3-member clusters of real
// processes while faults are injected (the leader killed with SIGKILL and
// restarted, the leader cut off by the proxies and healed, a follower cut off
// and healed), checked for linearizability (test/support/linearizability.ts).
// The same recorder and checker run against the reference etcd, to show they
// accept its histories, and against tetcd.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { after, before, describe, test, type TestContext } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { startCluster, type Cluster, type ServerKind } from "../support/cluster.js";
import { HistoryRecorder, summarize } from "../support/history-recorder.js";
import { checkHistory, type Operation, type StoreState } from "../support/linearizability.js";
import { hasCommand } from "../support/processes.js";

const clientCount = 12;
const keys = ["lin/k0", "lin/k1", "lin/k2", "lin/k3"];
/** How long each stretch of the fault schedule lasts. */
const quietMs = 2_000;
const faultMs = 2_500;
/** A history must hold at least this many acknowledged operations to say much. */
const acknowledgedMin = 300;

const kinds: { kind: ServerKind; skip: string | false }[] = [
  { kind: "etcd", skip: hasCommand("etcd") && hasCommand("etcdctl") ? false : "etcd and etcdctl are not installed" },
  { kind: "tetcd", skip: hasCommand("etcdctl") ? false : "etcdctl is not installed" },
];

/** Kills the leader and restarts it, cuts the new leader off and heals, cuts a follower off and heals. */
async function injectFaults(cluster: Cluster, log: (line: string) => void): Promise<void> {
  await sleep(quietMs);
  const first = await cluster.waitForLeader();
  log(`kill -9 the leader ${first.name}`);
  await first.kill();
  await sleep(faultMs);
  log(`restart ${first.name}`);
  await first.start();
  await sleep(quietMs);
  const second = await cluster.waitForLeader();
  log(`isolate the leader ${second.name}`);
  cluster.isolate(second.index);
  await sleep(faultMs);
  log("heal");
  cluster.heal();
  await sleep(quietMs);
  const third = await cluster.waitForLeader();
  const follower = cluster.members.find((member) => member !== third)!;
  log(`isolate the follower ${follower.name}`);
  cluster.isolate(follower.index);
  await sleep(faultMs);
  log("heal");
  cluster.heal();
  await sleep(quietMs);
}

function saveFailure(kind: ServerKind, initial: StoreState, recorder: HistoryRecorder, explanation: string): string {
  const path = `/tmp/lin-failure-${kind}-${Date.now()}.json`;
  const initialJson = { revision: initial.revision, keys: Object.fromEntries(initial.keys) };
  writeFileSync(path, JSON.stringify({ kind, initial: initialJson, explanation, history: recorder.history }, null, 1));
  return path;
}

/**
 * The history with one acknowledged read of a value made to return the
 * value an earlier acknowledged put wrote to the same key (at that put's
 * revision), or undefined if no read follows two acknowledged puts to its key.
 */
function withStaleRead(history: readonly Operation[]): Operation[] | undefined {
  const putAt = new Map<number, Operation & { type: "put" }>();
  for (const operation of history) if (operation.type === "put" && operation.outcome.status === "ok") putAt.set(operation.outcome.result.revision, operation);
  for (let index = history.length - 1; index >= 0; index--) {
    const read = history[index]!;
    if (read.type !== "get" || read.outcome.status !== "ok" || putAt.get(read.outcome.result.modRevision)?.key !== read.key) continue;
    const modRevision = read.outcome.result.modRevision;
    const earlier = [...putAt].filter(([revision, put]) => put.key === read.key && revision < modRevision).sort(([a], [b]) => b - a)[0];
    if (earlier === undefined) continue;
    const [revision, put] = earlier;
    const result = { ...read.outcome.result, value: put.value, modRevision: revision };
    return history.map((operation, position) => (position === index ? { ...read, outcome: { status: "ok", result } } : operation));
  }
  return undefined;
}

for (const { kind, skip } of kinds) {
  describe(`linearizable histories from a 3-member ${kind} cluster under faults`, { skip, timeout: 90_000 }, () => {
    let cluster: Cluster;
    before(async () => {
      cluster = await startCluster(kind, 3, { proxied: true });
    });
    after(async () => {
      await cluster?.stop();
    });

    test("clients on every member through a leader kill, a leader partition and a follower partition", { timeout: 60_000 }, async (t: TestContext) => {
      const seed = Date.now() % 1_000_000;
      const recorder = new HistoryRecorder({ endpoints: cluster.endpoints(), clientCount, keys, seed });
      let initial: StoreState;
      try {
        initial = await recorder.initialState();
        recorder.start();
        const startedMs = performance.now();
        await injectFaults(cluster, (line) => t.diagnostic(`${((performance.now() - startedMs) / 1000).toFixed(1)} s: ${line}`));
      } finally {
        await recorder.stop();
        cluster.heal();
      }
      const spanMs = Math.max(...recorder.history.map((operation) => operation.returnMs)) - Math.min(...recorder.history.map((operation) => operation.callMs));
      t.diagnostic(`seed ${seed}; ${summarize(recorder.history)} over ${(spanMs / 1000).toFixed(1)} s`);
      const acknowledged = recorder.history.filter((operation) => operation.outcome.status === "ok").length;
      assert.ok(acknowledged >= acknowledgedMin, `only ${acknowledged} acknowledged operations`);
      assert.ok(recorder.history.some((operation) => operation.outcome.status === "unknown"), "no call failed: the faults did not bite");

      const startedMs = performance.now();
      const result = checkHistory(recorder.history, { initial });
      t.diagnostic(`checked in ${(performance.now() - startedMs).toFixed(0)} ms, ${result.placements} placements: ${result.verdict}`);
      if (result.verdict !== "linearizable") {
        const path = saveFailure(kind, initial, recorder, result.explanation);
        assert.fail(`${result.explanation}\n(the history is in ${path})`);
      }
      const happened = result.order.filter((index) => recorder.history[index]!.outcome.status === "unknown").length;
      t.diagnostic(`${happened} writes of unknown outcome took effect in the linearization found`);
      // The same history with one read made stale is rejected: the check is not vacuous.
      const stale = withStaleRead(recorder.history);
      assert.ok(stale !== undefined, "no read to make stale");
      assert.equal(checkHistory(stale, { initial }).verdict, "not linearizable");
    });
  });
}
