import { test } from "node:test";
import assert from "node:assert/strict";
import { Cluster } from "./harness.js";
import { MessageType, message } from "../../src/raft/messages.js";
import { ErrStepLocalMessage, ErrStepPeerNotFound, RaftInvariantError } from "../../src/raft/errors.js";
import { StateType } from "../../src/raft/raft.js";

test("Ready ordering: a follower's MsgAppResp waits for persistence; the leader's MsgApp does not", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n]);
  cluster.campaign(1n);
  const leader = cluster.get(1n).node;
  leader.propose(new TextEncoder().encode("x"));
  const leaderReady = leader.ready();
  assert.ok(leaderReady.entries.length === 1);
  assert.ok(leaderReady.messages.some((m) => m.type === MessageType.MsgApp), "MsgApp may go out while the leader persists");
  assert.ok(!leaderReady.messagesAfterPersist.some((m) => m.type === MessageType.MsgApp));
  const follower = cluster.get(2n).node;
  for (const m of leaderReady.messages) if (m.to === 2n) follower.step(m);
  const followerReady = follower.ready();
  assert.equal(followerReady.entries.length, 1);
  assert.ok(followerReady.messagesAfterPersist.some((m) => m.type === MessageType.MsgAppResp), "the ack waits for the write");
  assert.ok(!followerReady.messages.some((m) => m.type === MessageType.MsgAppResp));
});

test("Ready ordering: vote requests and vote grants wait for the durable term and vote", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n], { preVote: false });
  const candidate = cluster.get(1n).node;
  candidate.campaign();
  const rd = candidate.ready();
  assert.equal(rd.hardState?.vote, 1n);
  assert.equal(rd.mustSync, true);
  assert.deepEqual(rd.messagesAfterPersist.map((m) => [m.type, m.to]), [[MessageType.MsgVote, 2n], [MessageType.MsgVote, 3n]]);
  assert.equal(rd.messages.length, 0);
  const voter = cluster.get(2n).node;
  voter.step(rd.messagesAfterPersist[0]!);
  const voterReady = voter.ready();
  assert.equal(voterReady.hardState?.vote, 1n);
  assert.deepEqual(voterReady.messagesAfterPersist.map((m) => m.type), [MessageType.MsgVoteResp]);
});

test("the leader's own log counts toward commit only after advance() reports it persisted", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n]);
  cluster.campaign(1n);
  const leader = cluster.get(1n).node;
  cluster.isolate(3n);
  const commit = leader.raft.log.committed;
  leader.propose(new TextEncoder().encode("x"));
  const rd = leader.ready();
  // Node 2 acknowledges before the leader has persisted: one ack of 3 is not a quorum.
  for (const m of rd.messages) if (m.to === 2n) cluster.get(2n).node.step(m);
  const followerReady = cluster.get(2n).node.ready();
  cluster.get(2n).storage.append(followerReady.entries);
  cluster.get(2n).node.advance();
  for (const m of followerReady.messagesAfterPersist) leader.step(m);
  assert.equal(leader.raft.log.committed, commit, "one follower's ack is not a quorum while the leader's write is pending");
  cluster.get(1n).storage.append(rd.entries);
  leader.advance();
  assert.equal(leader.raft.log.committed, commit + 1, "the leader's persisted entry completes the quorum");
});

test("hasReady is false between ready() and advance(); ready() twice is a bug", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n]);
  const node = cluster.get(1n).node;
  node.campaign();
  assert.equal(node.hasReady(), true);
  node.ready();
  node.tick();
  assert.equal(node.hasReady(), false);
  assert.throws(() => node.ready(), RaftInvariantError);
  node.advance();
  assert.throws(() => node.advance(), RaftInvariantError);
});

test("step refuses local messages and responses from unknown peers", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n]);
  const node = cluster.get(1n).node;
  assert.equal(node.step(message({ type: MessageType.MsgHup, from: 2n, to: 1n })), ErrStepLocalMessage);
  assert.equal(node.step(message({ type: MessageType.MsgAppResp, from: 9n, to: 1n, term: 1 })), ErrStepPeerNotFound);
});

test("status reports the role, hard state and, on the leader, each follower's progress", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n]);
  cluster.campaign(1n);
  cluster.propose(1n, "x");
  const status = cluster.get(1n).node.status();
  assert.equal(status.softState.raftState, StateType.Leader);
  assert.equal(status.softState.lead, 1n);
  assert.equal(status.hardState.commit, cluster.raft(1n).log.committed);
  assert.equal(status.applied, status.hardState.commit);
  assert.deepEqual([...status.progress.keys()].sort(), [1n, 2n, 3n]);
  assert.equal(status.progress.get(2n)!.match, status.hardState.commit);
  assert.equal(cluster.get(2n).node.status().progress.size, 0);
});

test("reportUnreachable moves a replicating follower back to probe", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n]);
  cluster.campaign(1n);
  cluster.propose(1n, "x");
  assert.equal(cluster.raft(1n).tracker.progress.get(2n)!.state, "replicate");
  cluster.get(1n).node.reportUnreachable(2n);
  assert.equal(cluster.raft(1n).tracker.progress.get(2n)!.state, "probe");
});

test("a restarted node resumes from storage without applying entries again", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n]);
  cluster.campaign(1n);
  cluster.propose(1n, "a");
  cluster.propose(1n, "b");
  const old = cluster.get(2n);
  const applied = old.node.raft.log.applied;
  const restarted = cluster.add(2n, old.storage, { applied });
  assert.equal(restarted.node.raft.term, old.node.raft.term);
  assert.equal(restarted.node.raft.log.committed, old.node.raft.log.committed);
  cluster.propose(1n, "c");
  assert.deepEqual(cluster.appliedData(2n), ["c"]);
});
