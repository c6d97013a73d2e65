/**
 * Seeds and scenarios that once failed during development, kept as regression
 * tests. Seed numbers replay the scenario of their time only while the
 * simulator draws its random numbers the same way; the unit tests below pin
 * the bugs themselves.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { runSeed } from "../../src/raft/sim/simulation.js";
import { Cluster } from "./harness.js";
import { MessageType, message } from "../../src/raft/messages.js";

const failedSeeds = [
  { seed: 8, bug: "crash: inflight window full when a heartbeat response triggered an append" },
  { seed: 20, bug: "liveness: a member added after the leader's snapshot could not install it" },
  { seed: 710, bug: "leader completeness: a node that lost its unpersisted bootstrap elected itself alone" },
  { seed: 860, bug: "liveness: a proposal accepted by a leader that then stepped down was never retried" },
  { seed: 1821, bug: "liveness: the commit bound ignored a large backlog sent one entry per message" },
  { seed: 4654, bug: "liveness: split votes between two voters outlasted a 100-tick bound" },
  { seed: 6215, bug: "crash in the simulator: the leader changed before the final catch-up check" },
  { seed: 8816, bug: "liveness: a voter with a stale configuration out-termed the only electable candidate" },
  { seed: 9610, bug: "liveness: a less up-to-date candidate kept resetting the better one's timer" },
];

for (const { seed, bug } of failedSeeds) {
  test(`regression seed ${seed} (${bug})`, () => {
    const result = runSeed({ seed });
    assert.equal(result.failure, undefined);
    assert.ok(result.ok);
  });
}

test("regression: a full inflight window answers a heartbeat response with an empty append, not a crash", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n], { maxInflightMessages: 1, maxSizePerMessageBytes: 1, checkQuorum: false });
  cluster.campaign(1n);
  cluster.propose(1n, "warm-up");
  cluster.dropIf = (m) => m.from === 2n && m.type === MessageType.MsgAppResp;
  cluster.propose(1n, "a");
  cluster.propose(1n, "b");
  assert.equal(cluster.raft(1n).tracker.progress.get(2n)!.inflights.full(), true);
  const before = cluster.sent.length;
  cluster.tickAll(2);
  const appends = cluster.sent.slice(before).filter((m) => m.type === MessageType.MsgApp && m.to === 2n);
  assert.ok(appends.length > 0, "an append went out after the heartbeat response");
  assert.ok(appends.every((m) => m.entries.length === 0), "only empty appends while the window is full");
  cluster.dropIf = undefined;
  cluster.tickAll(3);
  assert.deepEqual(cluster.appliedData(2n), ["warm-up", "a", "b"]);
});

test("regression: a vote request from an older term is answered with our term", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n], { preVote: false, checkQuorum: false });
  const voter = cluster.get(2n).node;
  voter.campaign();
  voter.campaign();
  const term = voter.raft.term;
  voter.ready();
  voter.advance();
  voter.ready();
  voter.advance();
  voter.step(message({ type: MessageType.MsgVote, from: 3n, to: 2n, term: term - 1, index: 1, logTerm: 1 }));
  const answer = voter.ready().messagesAfterPersist.find((m) => m.to === 3n);
  assert.equal(answer?.type, MessageType.MsgVoteResp);
  assert.equal(answer?.reject, true);
  assert.equal(answer?.term, term);
});
