import { test } from "node:test";
import assert from "node:assert/strict";
import { Cluster } from "./harness.js";
import { MessageType } from "../../src/raft/messages.js";
import { ErrProposalDropped } from "../../src/raft/errors.js";

test("leadership transfer to an up-to-date follower sends MsgTimeoutNow and it wins", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n]);
  cluster.campaign(1n);
  cluster.get(1n).node.transferLeader(2n);
  cluster.pump();
  assert.deepEqual(cluster.leaders(), [2n]);
  assert.equal(cluster.sentOfType(MessageType.MsgTimeoutNow).length, 1);
});

test("a follower forwards a transfer request to the leader, keeping the transferee", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n]);
  cluster.campaign(1n);
  cluster.get(2n).node.transferLeader(3n);
  cluster.pump();
  assert.deepEqual(cluster.leaders(), [3n]);
});

test("a lagging transferee is caught up first; proposals are dropped while the transfer runs", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n]);
  cluster.campaign(1n);
  cluster.isolate(3n);
  cluster.propose(1n, "a");
  cluster.get(1n).node.transferLeader(3n);
  cluster.pump();
  assert.equal(cluster.raft(1n).leadTransferee, 3n);
  assert.equal(cluster.propose(1n, "b"), ErrProposalDropped);
  cluster.heal();
  cluster.tickAll(3);
  assert.deepEqual(cluster.leaders(), [3n]);
  assert.deepEqual(cluster.appliedData(3n), ["a"]);
});

test("a transfer that does not finish within an election timeout is abandoned", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n], { checkQuorum: false });
  cluster.campaign(1n);
  cluster.isolate(3n);
  cluster.propose(1n, "a");
  cluster.get(1n).node.transferLeader(3n);
  cluster.pump();
  cluster.tickAll(25);
  assert.equal(cluster.raft(1n).leadTransferee, 0n);
  assert.equal(cluster.propose(1n, "b"), undefined);
  assert.deepEqual(cluster.leaders(), [1n]);
});

test("a transfer to a learner is ignored", () => {
  const cluster = Cluster.bootstrap([1n, 2n], {}, [3n]);
  cluster.campaign(1n);
  cluster.get(1n).node.proposeConfChange({ id: 0n, type: 3, nodeId: 3n, context: new Uint8Array(0) });
  cluster.tickAll(5);
  assert.equal(cluster.raft(1n).tracker.progress.get(3n)?.isLearner, true);
  cluster.get(1n).node.transferLeader(3n);
  cluster.pump();
  assert.equal(cluster.raft(1n).leadTransferee, 0n);
  assert.deepEqual(cluster.leaders(), [1n]);
});
