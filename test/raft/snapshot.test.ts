import { test } from "node:test";
import assert from "node:assert/strict";
import { Cluster } from "./harness.js";
import { MessageType } from "../../src/raft/messages.js";
import { ProgressState } from "../../src/raft/progress.js";
import { ErrSnapshotTemporarilyUnavailable } from "../../src/raft/errors.js";

function compactLeader(cluster: Cluster, id: bigint): number {
  const leader = cluster.get(id);
  const applied = leader.node.raft.log.applied;
  leader.storage.createSnapshot(applied, leader.node.raft.tracker.confState(), new TextEncoder().encode(`state@${applied}`));
  leader.storage.compact(applied);
  return applied;
}

test("the leader sends a snapshot to a follower that needs compacted entries, and the follower installs it", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n]);
  cluster.campaign(1n);
  cluster.isolate(3n);
  for (let i = 0; i < 10; i++) cluster.propose(1n, `v${i}`);
  const snapshotIndex = compactLeader(cluster, 1n);
  cluster.propose(1n, "after-snapshot");
  cluster.heal();
  cluster.tickAll(5);
  const snaps = cluster.sentOfType(MessageType.MsgSnap);
  assert.equal(snaps.length, 1);
  assert.equal(snaps[0]!.to, 3n);
  cluster.get(1n).node.reportSnapshot(3n, "finish");
  cluster.tickAll(5);
  const follower = cluster.get(3n);
  assert.equal(follower.storage.snapshot().metadata.index, snapshotIndex);
  assert.equal(new TextDecoder().decode(follower.storage.snapshot().data), `state@${snapshotIndex}`);
  assert.deepEqual(follower.storage.snapshot().metadata.confState.voters, [1n, 2n, 3n]);
  assert.deepEqual(cluster.appliedData(3n), ["after-snapshot"], "entries after the snapshot are applied normally");
  assert.equal(cluster.raft(1n).tracker.progress.get(3n)!.state, ProgressState.Replicate);
  assert.equal(follower.node.raft.log.committed, cluster.raft(1n).log.committed);
});

test("a failed snapshot transfer is retried after the follower answers again", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n]);
  cluster.campaign(1n);
  cluster.isolate(3n);
  for (let i = 0; i < 5; i++) cluster.propose(1n, `v${i}`);
  compactLeader(cluster, 1n);
  cluster.heal();
  cluster.dropIf = (m) => m.type === MessageType.MsgSnap;
  cluster.tickAll(3);
  assert.equal(cluster.raft(1n).tracker.progress.get(3n)!.state, ProgressState.Snapshot);
  cluster.get(1n).node.reportSnapshot(3n, "failure");
  assert.equal(cluster.raft(1n).tracker.progress.get(3n)!.state, ProgressState.Probe);
  cluster.dropIf = undefined;
  cluster.tickAll(5);
  cluster.get(1n).node.reportSnapshot(3n, "finish");
  cluster.tickAll(5);
  assert.equal(cluster.get(3n).node.raft.log.committed, cluster.raft(1n).log.committed);
  assert.ok(cluster.sentOfType(MessageType.MsgSnap).length >= 2);
});

test("a snapshot older than the follower's commit index is ignored", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n]);
  cluster.campaign(1n);
  for (let i = 0; i < 3; i++) cluster.propose(1n, `v${i}`);
  const follower = cluster.get(2n).node;
  const committed = follower.raft.log.committed;
  follower.step({
    type: MessageType.MsgSnap, from: 1n, to: 2n, term: follower.raft.term, logTerm: 0, index: 0, entries: [], commit: 0,
    reject: false, rejectHint: 0, context: new Uint8Array(0),
    snapshot: { data: new Uint8Array(0), metadata: { index: 2, term: 1, confState: { voters: [1n, 2n, 3n], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false } } },
  });
  assert.equal(follower.raft.log.unstable.snapshot, undefined);
  assert.equal(follower.raft.log.committed, committed);
});

test("a snapshot is not installed while committed entries of an outstanding Ready are being applied", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n]);
  cluster.campaign(1n);
  cluster.cutLink(1n, 2n);
  cluster.propose(1n, "a"); // committed through node 3 only
  cluster.heal();
  const term = cluster.raft(1n).term;
  const confState = { voters: [1n, 2n, 3n], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
  const msgSnap = {
    type: MessageType.MsgSnap, from: 1n, to: 2n, term, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0,
    context: new Uint8Array(0), snapshot: { data: new Uint8Array(0), metadata: { index: 50, term, confState } },
  };
  const follower = cluster.get(2n);
  const outcomes: (number | undefined)[] = [];
  const original = cluster.handleReady.bind(cluster);
  cluster.handleReady = (node, ready) => {
    if (node !== follower || ready.committedEntries.length === 0 || outcomes.length > 0) return original(node, ready);
    // Between ready() and advance(), with entries to apply: the snapshot must wait.
    follower.node.step(msgSnap);
    outcomes.push(follower.node.raft.log.unstable.snapshot?.metadata.index);
    const messages = original(node, ready);
    follower.node.step(msgSnap);
    outcomes.push(follower.node.raft.log.unstable.snapshot?.metadata.index);
    // The made-up snapshot is beyond the leader's log: keep its effects away from the leader.
    cluster.isolate(2n);
    return messages;
  };
  cluster.tickAll(3);
  assert.deepEqual(outcomes, [undefined, 50]);
});

test("while storage answers ErrSnapshotTemporarilyUnavailable the leader sends no snapshot, then sends it", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n]);
  cluster.campaign(1n);
  cluster.isolate(3n);
  for (let i = 0; i < 5; i++) cluster.propose(1n, `v${i}`);
  compactLeader(cluster, 1n);
  const storage = cluster.get(1n).storage;
  const realSnapshot = storage.snapshot.bind(storage);
  let available = false;
  storage.snapshot = () => {
    if (!available) throw ErrSnapshotTemporarilyUnavailable;
    return realSnapshot();
  };
  cluster.heal();
  cluster.tickAll(5);
  assert.equal(cluster.sentOfType(MessageType.MsgSnap).length, 0);
  available = true;
  cluster.tickAll(5);
  assert.equal(cluster.sentOfType(MessageType.MsgSnap).length, 1);
});
