/**
 * CI batch of the deterministic simulator: as many seeds as fit in the time
 * budget (at least minimumSeeds, at most maximumSeeds), every one must hold
 * every safety and liveness check. Set RAFT_SIM_FIRST_SEED to start elsewhere.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { runSeed } from "../../src/raft/sim/simulation.js";

const batch = {
  minimumSeeds: 200,
  maximumSeeds: 20000,
  wallTimeBudgetMs: 60_000,
} as const;

test("simulator: a time-bounded batch of seeds holds every invariant", () => {
  const firstSeed = Number(process.env.RAFT_SIM_FIRST_SEED ?? "1");
  const started = Date.now();
  const totals: Record<string, number> = {};
  const failures: string[] = [];
  let ran = 0;
  for (let seed = firstSeed; ran < batch.maximumSeeds; seed++) {
    if (ran >= batch.minimumSeeds && Date.now() - started > batch.wallTimeBudgetMs) break;
    const result = runSeed({ seed });
    ran++;
    for (const [key, value] of Object.entries(result.stats)) totals[key] = (totals[key] ?? 0) + value;
    if (!result.ok) failures.push(`seed ${seed}: ${result.failure} (replay: npm run sim -- --seed ${seed} --trace)`);
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`raft simulator: ${ran} seeds from ${firstSeed} ran in ${seconds} s, ${failures.length} failed; totals ${JSON.stringify(totals)}`);
  assert.deepEqual(failures, []);
  // The batch must have exercised what it claims to check.
  for (const key of ["applied", "readsServed", "crashes", "restarts", "partitions", "confChanges", "transfers", "compactions"]) {
    assert.ok((totals[key] ?? 0) > 0, `the workload never produced ${key}`);
  }
});
