/**
 * The simulator's checkers are themselves tested: with one safety rule broken
 * on purpose (a test-only fault hook in the core), a modest number of seeds
 * must reveal a violation of the property that the rule protects.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { runSeed } from "../../src/raft/sim/simulation.js";
import type { TestingFaults } from "../../src/raft/config.js";
import { Checker, SafetyViolation } from "../../src/raft/sim/checker.js";
import { EntryType } from "../../src/raft/messages.js";

function firstFailure(faults: TestingFaults, seeds: number): { seed: number; failure: string } | undefined {
  for (let seed = 1; seed <= seeds; seed++) {
    const result = runSeed({ seed, testingFaults: faults });
    if (!result.ok) return { seed, failure: result.failure! };
  }
  return undefined;
}

test("granting two votes in one term is caught (election safety) within 20 seeds", () => {
  const found = firstFailure({ grantMultipleVotesPerTerm: true }, 20);
  assert.ok(found !== undefined, "no seed caught the fault");
  assert.match(found.failure, /^(election safety|leader completeness|commit durability|state machine safety|log matching)/);
  console.log(`grantMultipleVotesPerTerm caught at seed ${found.seed}: ${found.failure}`);
});

test("voting without comparing logs is caught within 20 seeds", () => {
  const found = firstFailure({ ignoreLogWhenVoting: true }, 20);
  assert.ok(found !== undefined, "no seed caught the fault");
  assert.match(found.failure, /^(leader completeness|commit durability|state machine safety|log matching|election safety)/);
  console.log(`ignoreLogWhenVoting caught at seed ${found.seed}: ${found.failure}`);
});

test("counting replicas of an earlier term's entries toward commit (Figure 8) is caught within 150 seeds", () => {
  const found = firstFailure({ commitEntriesOfEarlierTerms: true }, 150);
  assert.ok(found !== undefined, "no seed caught the fault");
  assert.match(found.failure, /^(commit durability|leader completeness|state machine safety)/);
  console.log(`commitEntriesOfEarlierTerms caught at seed ${found.seed}: ${found.failure}`);
});

test("the same seeds pass without the fault", () => {
  for (let seed = 1; seed <= 20; seed++) assert.equal(runSeed({ seed }).failure, undefined, `seed ${seed}`);
});

test("a seed replays exactly: same trace twice", () => {
  const a = runSeed({ seed: 7, trace: true });
  const b = runSeed({ seed: 7, trace: true });
  assert.ok(a.trace.length > 100);
  assert.deepEqual(a.trace, b.trace);
});

const entry = (index: number, term: number, data: string) => ({ index, term, type: EntryType.EntryNormal, data: new TextEncoder().encode(data) });

test("checker: two leaders in one term", () => {
  const checker = new Checker();
  checker.observeLeader(3, 1n);
  checker.observeLeader(3, 1n);
  assert.throws(() => checker.observeLeader(3, 2n), SafetyViolation);
});

test("checker: different entries under one index and term, or different histories", () => {
  const checker = new Checker();
  checker.observeAppended(entry(5, 2, "a"), 2);
  checker.observeAppended(entry(5, 2, "a"), 2);
  assert.throws(() => checker.observeAppended(entry(5, 2, "b"), 2), /log matching/);
  assert.throws(() => checker.observeAppended(entry(5, 2, "a"), 1), /log matching/);
});

test("checker: different applied histories at one index", () => {
  const checker = new Checker();
  checker.observeApplied(1n, 4, 2, 1234);
  checker.observeApplied(2n, 4, 2, 1234);
  assert.throws(() => checker.observeApplied(3n, 4, 2, 999), /state machine safety/);
});

test("checker: a read index below what was committed before the read began", () => {
  const checker = new Checker();
  checker.checkRead(1n, 10, 10);
  assert.throws(() => checker.checkRead(1n, 9, 10), /linearizable read/);
});

test("checker: a committed entry that a node lacking it could overwrite by winning an election", () => {
  const checker = new Checker();
  const log = (entries: [number, number][]) => ({
    holds: (index: number, term: number) => entries.some(([i, t]) => i === index && t === term),
    last: () => ({ index: entries[entries.length - 1]![0], term: entries[entries.length - 1]![1] }),
  });
  // Figure 8 (c): 2:2 is on S1, S2, S3; S5 has 2:3.
  const logs = new Map([
    [1n, log([[1, 1], [2, 2], [3, 4]])],
    [2n, log([[1, 1], [2, 2]])],
    [3n, log([[1, 1], [2, 2]])],
    [4n, log([[1, 1]])],
    [5n, log([[1, 1], [2, 3]])],
  ]);
  assert.throws(() => checker.checkCommitDurable(1n, 2, 2, { incoming: [1n, 2n, 3n, 4n, 5n], outgoing: [] }, logs), /commit durability/);
  // Figure 8 (e): once 3:4 is on a majority, S5 cannot win.
  logs.set(2n, log([[1, 1], [2, 2], [3, 4]]));
  logs.set(3n, log([[1, 1], [2, 2], [3, 4]]));
  checker.checkCommitDurable(1n, 3, 4, { incoming: [1n, 2n, 3n, 4n, 5n], outgoing: [] }, logs);
});
