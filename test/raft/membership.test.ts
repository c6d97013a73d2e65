import { test } from "node:test";
import assert from "node:assert/strict";
import { Cluster } from "./harness.js";
import { ConfChangeTransition, ConfChangeType, MessageType } from "../../src/raft/messages.js";
import type { ConfChange } from "../../src/raft/messages.js";
import { ErrProposalDropped, RaftError } from "../../src/raft/errors.js";
import { StateType } from "../../src/raft/raft.js";

function change(type: ConfChangeType, nodeId: bigint): ConfChange {
  return { id: 0n, type, nodeId, context: new Uint8Array(0) };
}

function configure(cluster: Cluster, leader: bigint, type: ConfChangeType, nodeId: bigint): void {
  assert.equal(cluster.get(leader).node.proposeConfChange(change(type, nodeId)), undefined);
  cluster.tickAll(5);
}

test("a learner receives the log and never votes; promoted, it counts for quorum", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n], {}, [4n]);
  cluster.campaign(1n);
  configure(cluster, 1n, ConfChangeType.ConfChangeAddLearnerNode, 4n);
  assert.deepEqual(cluster.raft(1n).tracker.confState().learners, [4n]);
  cluster.propose(1n, "to-learner");
  assert.deepEqual(cluster.appliedData(4n), ["to-learner"]);
  assert.equal(cluster.raft(4n).isLearner, true);
  // A learner never campaigns, however long it waits.
  cluster.isolate(4n);
  cluster.tickAll(50);
  assert.equal(cluster.raft(4n).state, StateType.Follower);
  assert.equal(cluster.sent.filter((m) => m.from === 4n && (m.type === MessageType.MsgVote || m.type === MessageType.MsgPreVote)).length, 0);
  // Vote requests go only to voters.
  assert.equal(cluster.sent.filter((m) => m.to === 4n && m.type === MessageType.MsgVote).length, 0);
  cluster.heal();
  configure(cluster, 1n, ConfChangeType.ConfChangeAddNode, 4n);
  assert.deepEqual(cluster.raft(1n).tracker.confState().voters, [1n, 2n, 3n, 4n]);
  assert.equal(cluster.raft(4n).isLearner, false);
  // With 4 voters a quorum is 3: two down voters stop commits.
  cluster.isolate(2n);
  cluster.isolate(3n);
  cluster.propose(1n, "needs-3-of-4");
  assert.deepEqual(cluster.appliedData(1n), ["to-learner"]);
  cluster.heal();
  cluster.tickAll(3);
  assert.deepEqual(cluster.appliedData(1n), ["to-learner", "needs-3-of-4"]);
});

test("adding a voter to an empty node makes it catch up from the log", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n], {}, [4n]);
  cluster.campaign(1n);
  cluster.propose(1n, "before");
  configure(cluster, 1n, ConfChangeType.ConfChangeAddNode, 4n);
  assert.deepEqual(cluster.appliedData(4n), ["before"]);
  assert.deepEqual(cluster.raft(4n).tracker.confState().voters, [1n, 2n, 3n, 4n]);
});

test("only one conf change may be pending: a second before the first is applied becomes an empty entry", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n], {}, [4n, 5n]);
  cluster.campaign(1n);
  cluster.isolate(2n);
  cluster.isolate(3n);
  const node = cluster.get(1n).node;
  assert.equal(node.proposeConfChange(change(ConfChangeType.ConfChangeAddLearnerNode, 4n)), undefined);
  assert.equal(node.proposeConfChange(change(ConfChangeType.ConfChangeAddLearnerNode, 5n)), undefined);
  cluster.heal();
  cluster.tickAll(5);
  assert.deepEqual(cluster.raft(1n).tracker.confState().learners, [4n]);
  // Once applied, another change is accepted.
  configure(cluster, 1n, ConfChangeType.ConfChangeAddLearnerNode, 5n);
  assert.deepEqual(cluster.raft(1n).tracker.confState().learners, [4n, 5n]);
});

test("a change takes effect when applied, not when appended", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n], {}, [4n]);
  cluster.campaign(1n);
  cluster.isolate(2n);
  cluster.isolate(3n);
  cluster.get(1n).node.proposeConfChange(change(ConfChangeType.ConfChangeAddNode, 4n));
  cluster.pump();
  assert.deepEqual(cluster.raft(1n).tracker.confState().voters, [1n, 2n, 3n]);
});

test("removing the leader makes it step down, and the rest elect a new leader", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n]);
  cluster.campaign(1n);
  configure(cluster, 1n, ConfChangeType.ConfChangeRemoveNode, 1n);
  assert.equal(cluster.raft(1n).state, StateType.Follower);
  assert.deepEqual(cluster.raft(2n).tracker.confState().voters, [2n, 3n]);
  cluster.isolate(1n);
  cluster.tickAll(40);
  const leaders = cluster.leaders();
  assert.equal(leaders.length, 1);
  assert.notEqual(leaders[0], 1n);
  assert.equal(cluster.propose(leaders[0]!, "after-removal"), undefined);
  assert.deepEqual(cluster.appliedData(2n), ["after-removal"]);
});

test("demoting a voter to learner", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n]);
  cluster.campaign(1n);
  configure(cluster, 1n, ConfChangeType.ConfChangeAddLearnerNode, 3n);
  const conf = cluster.raft(2n).tracker.confState();
  assert.deepEqual(conf.voters, [1n, 2n]);
  assert.deepEqual(conf.learners, [3n]);
});

test("an invalid change (removing the last voter) returns an error and changes nothing", () => {
  const cluster = Cluster.bootstrap([1n]);
  const result = cluster.get(1n).node.applyConfChange(change(ConfChangeType.ConfChangeRemoveNode, 1n));
  assert.ok(result instanceof RaftError);
  assert.deepEqual(cluster.raft(1n).tracker.confState().voters, [1n]);
});

test("the simple protocol refuses to change two voters at once", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n]);
  const result = cluster.get(1n).node.applyConfChange({
    transition: ConfChangeTransition.ConfChangeTransitionAuto,
    changes: [
      { type: ConfChangeType.ConfChangeAddNode, nodeId: 4n },
      { type: ConfChangeType.ConfChangeRemoveNode, nodeId: 3n },
    ],
    context: new Uint8Array(0),
  });
  // Two changes with the auto transition enter a joint configuration instead.
  assert.ok(!(result instanceof RaftError));
  assert.deepEqual(result.voters, [1n, 2n, 4n]);
  assert.deepEqual(result.votersOutgoing, [1n, 2n, 3n]);
  assert.equal(result.autoLeave, true);
});

test("joint consensus: replacing a voter goes through C_old,new and leaves it automatically", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n], {}, [4n]);
  cluster.campaign(1n);
  const error = cluster.get(1n).node.proposeConfChange({
    transition: ConfChangeTransition.ConfChangeTransitionAuto,
    changes: [
      { type: ConfChangeType.ConfChangeAddNode, nodeId: 4n },
      { type: ConfChangeType.ConfChangeRemoveNode, nodeId: 3n },
    ],
    context: new Uint8Array(0),
  });
  assert.equal(error, undefined);
  cluster.tickAll(10);
  for (const id of [1n, 2n, 4n]) {
    const conf = cluster.raft(id).tracker.confState();
    assert.deepEqual(conf.voters, [1n, 2n, 4n], `node ${id}`);
    assert.deepEqual(conf.votersOutgoing, [], `node ${id} left the joint config`);
  }
  assert.equal(cluster.propose(1n, "after-joint"), undefined);
  assert.deepEqual(cluster.appliedData(4n), ["after-joint"]);
});

test("a removed leader hands leadership to the most caught-up voter", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n]);
  cluster.campaign(1n);
  cluster.propose(1n, "x");
  assert.equal(cluster.get(1n).node.proposeConfChange(change(ConfChangeType.ConfChangeRemoveNode, 1n)), undefined);
  cluster.pump();
  // Nodes 2 and 3 are equally caught up; the lower id is chosen, receives MsgTimeoutNow and wins.
  assert.ok(cluster.sent.some((m) => m.type === MessageType.MsgTimeoutNow && m.to === 2n));
  assert.equal(cluster.raft(2n).state, StateType.Leader);
  assert.ok(cluster.raft(2n).term > cluster.raft(1n).term);
  assert.deepEqual(cluster.raft(2n).tracker.confState().voters, [2n, 3n]);
  // Nobody writes to the removed node any more; it gives up leading after an election timeout.
  for (let i = 0; i < 12; i++) cluster.tick(1n);
  cluster.pump();
  assert.deepEqual(cluster.leaders(), [2n]);
});

test("a removed leader whose hand-over cannot finish steps down after an election timeout", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n], { checkQuorum: false });
  cluster.campaign(1n);
  cluster.dropIf = (m) => m.type === MessageType.MsgTimeoutNow;
  cluster.get(1n).node.proposeConfChange(change(ConfChangeType.ConfChangeRemoveNode, 1n));
  cluster.pump();
  assert.equal(cluster.raft(1n).state, StateType.Leader);
  assert.equal(cluster.get(1n).node.readIndex(new Uint8Array([1])), ErrProposalDropped, "a non-voter leader cannot confirm reads");
  assert.equal(cluster.propose(1n, "y"), ErrProposalDropped);
  for (let i = 0; i < 12; i++) {
    cluster.tick(1n);
    cluster.pump();
  }
  assert.equal(cluster.raft(1n).state, StateType.Follower);
});
