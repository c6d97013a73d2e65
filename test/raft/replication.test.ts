import { test } from "node:test";
import assert from "node:assert/strict";
import { Cluster, presetStorage, entry } from "./harness.js";
import type { NodeOptions } from "./harness.js";
import { MessageType } from "../../src/raft/messages.js";
import type { Entry } from "../../src/raft/messages.js";
import { StateType } from "../../src/raft/raft.js";
import { ErrProposalDropped } from "../../src/raft/errors.js";

const five = [1n, 2n, 3n, 4n, 5n];

/**
 * The Raft paper's Figure 8, indexes as in the paper (a snapshot holds index 1):
 * S1 leads term 4 with [1:1 2:2]; S2 has 2:2; S3 and S4 have only 1:1; S5 has 2:3.
 */
function figure8(options: NodeOptions, onlyOldEntry: boolean): Cluster {
  const cluster = new Cluster();
  const logs: Record<string, Entry[]> = { "1": [entry(2, 2)], "2": [entry(2, 2)], "3": [], "4": [], "5": [entry(2, 3)] };
  const all = { preVote: false, checkQuorum: false, maxSizePerMessageBytes: 1, ...options };
  for (const id of five) cluster.add(id, presetStorage(five, logs[String(id)]!, 3), all);
  cluster.isolate(5n);
  // S1 gets to replicate its term-2 entry but not its own term-4 entry (index 3).
  // (A probe that the receiver must reject anyway, lacking index 2, may pass.)
  if (onlyOldEntry) {
    cluster.dropIf = (m) =>
      m.from === 1n && m.type === MessageType.MsgApp && m.entries.some((e) => e.index >= 3) && cluster.raft(m.to).log.lastIndex() >= 2;
  }
  cluster.campaign(1n);
  assert.deepEqual(cluster.leaders(), [1n]);
  assert.equal(cluster.raft(1n).term, 4);
  return cluster;
}


test("Figure 8: a leader does not commit an entry of an earlier term by counting replicas", () => {
  const cluster = figure8({}, true);
  cluster.tickAll(3);
  for (const id of [2n, 3n, 4n]) assert.equal(cluster.get(id).storage.term(2), 2, `S${id} has 2:2`);
  assert.equal(cluster.raft(1n).log.committed, 1, "2:2 is on a majority but must not be committed");
  // Rightly so: S1 crashes, S5 (last term 3) wins term 5 and overwrites index 2 everywhere.
  cluster.down.add(1n);
  cluster.heal();
  cluster.isolate(1n);
  cluster.dropIf = undefined;
  cluster.campaign(5n); // term 4: the others already voted for S1 in it
  cluster.campaign(5n); // term 5
  assert.deepEqual(cluster.leaders(), [5n]);
  assert.equal(cluster.raft(5n).term, 5);
  cluster.tickAll(3);
  for (const id of [2n, 3n, 4n, 5n]) assert.equal(cluster.get(id).storage.term(2), 3, `S${id} now has 2:3`);
});

test("Figure 8 (e): once an entry of the leader's term is on a majority, earlier entries commit with it", () => {
  const cluster = figure8({}, false);
  cluster.tickAll(3);
  assert.equal(cluster.raft(1n).log.committed, 3);
  // S5 can no longer win: a majority has a log more up to date than its own.
  cluster.heal();
  cluster.down.add(1n);
  cluster.isolate(1n);
  cluster.campaign(5n);
  cluster.campaign(5n);
  assert.equal(cluster.raft(5n).term, 5);
  assert.notEqual(cluster.raft(5n).state, StateType.Leader);
});

test("the commitEntriesOfEarlierTerms fault hook breaks exactly that rule", () => {
  const cluster = figure8({ testingFaults: { commitEntriesOfEarlierTerms: true } }, true);
  cluster.tickAll(3);
  assert.equal(cluster.raft(1n).log.committed, 2, "the faulty rule commits 2:2");
});

test("a deposed leader's uncommitted entries are overwritten by the new leader's", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n], { preVote: false, checkQuorum: false });
  cluster.campaign(1n);
  cluster.propose(1n, "committed");
  cluster.isolate(1n);
  cluster.propose(1n, "lost-a");
  cluster.propose(1n, "lost-b");
  const oldLast = cluster.raft(1n).log.lastIndex();
  cluster.campaign(2n);
  assert.deepEqual(cluster.leaders().sort(), [1n, 2n]);
  cluster.propose(2n, "winner");
  cluster.heal();
  cluster.tickAll(5);
  assert.deepEqual(cluster.leaders(), [2n]);
  assert.equal(cluster.raft(1n).state, StateType.Follower);
  for (const id of [1n, 2n, 3n]) assert.deepEqual(cluster.appliedData(id), ["committed", "winner"]);
  const log1 = cluster.raft(1n).log.allEntries().map((e) => `${e.index}:${e.term}`);
  const log2 = cluster.raft(2n).log.allEntries().map((e) => `${e.index}:${e.term}`);
  assert.deepEqual(log1, log2);
  assert.ok(cluster.raft(1n).log.lastIndex() >= oldLast - 1);
});

test("fast backtracking: a follower's rejection hint skips a whole divergent term at once", () => {
  const divergent: Entry[] = [];
  for (let i = 2; i <= 51; i++) divergent.push(entry(i, 2, "stale"));
  const cluster = new Cluster();
  const options = { preVote: false, checkQuorum: false };
  cluster.add(1n, presetStorage([1n, 2n, 3n], [entry(2, 3)], 3), options);
  cluster.add(2n, presetStorage([1n, 2n, 3n], [entry(2, 3)], 3), options);
  cluster.add(3n, presetStorage([1n, 2n, 3n], divergent, 3), options);
  cluster.isolate(3n);
  cluster.campaign(1n);
  for (let i = 0; i < 20; i++) cluster.propose(1n, `e${i}`);
  cluster.heal();
  cluster.tickAll(3);
  const rejections = cluster.sent.filter((m) => m.type === MessageType.MsgAppResp && m.from === 3n && m.reject);
  assert.ok(rejections.length >= 1 && rejections.length <= 2, `took ${rejections.length} rejections`);
  assert.equal(cluster.raft(3n).log.lastIndex(), cluster.raft(1n).log.lastIndex());
  assert.equal(cluster.get(3n).storage.term(2), 3);
});

test("flow control: a replicating follower that does not answer gets at most maxInflightMessages appends", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n], { maxInflightMessages: 2, maxSizePerMessageBytes: 1, checkQuorum: false });
  cluster.campaign(1n);
  cluster.propose(1n, "warm-up");
  assert.equal(cluster.raft(1n).tracker.progress.get(3n)!.state, "replicate");
  cluster.cutLink(3n, 1n);
  const before = cluster.sent.length;
  for (let i = 0; i < 10; i++) cluster.propose(1n, `e${i}`);
  const appendsTo3 = cluster.sent.slice(before).filter((m) => m.type === MessageType.MsgApp && m.to === 3n && m.entries.length > 0);
  assert.equal(appendsTo3.length, 2);
  assert.ok(appendsTo3.every((m) => m.entries.length === 1), "one entry per message under the size limit");
  // Node 2 still acknowledges, so everything commits.
  assert.equal(cluster.appliedData(2n).length, 11);
});

test("maxUncommittedEntriesSizeBytes: a leader that cannot commit drops proposals beyond the limit", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n], { maxUncommittedEntriesSizeBytes: 10, checkQuorum: false });
  cluster.campaign(1n);
  cluster.isolate(1n);
  assert.equal(cluster.propose(1n, "12345678"), undefined);
  assert.equal(cluster.propose(1n, "123"), ErrProposalDropped);
  cluster.heal();
  cluster.tickAll(3);
  assert.equal(cluster.propose(1n, "123"), undefined, "accepted again once the backlog committed");
});

test("proposals are dropped with an error while there is no leader", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n]);
  assert.equal(cluster.propose(2n, "x"), ErrProposalDropped);
});

test("a follower forwards proposals to the leader", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n]);
  cluster.campaign(1n);
  assert.equal(cluster.propose(3n, "from-follower"), undefined);
  for (const id of [1n, 2n, 3n]) assert.deepEqual(cluster.appliedData(id), ["from-follower"]);
});

test("with proposal forwarding disabled a follower drops proposals", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n], { disableProposalForwarding: true });
  cluster.campaign(1n);
  assert.equal(cluster.propose(3n, "x"), ErrProposalDropped);
});

test("a follower's log is repaired and the cluster applies the same entries everywhere", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n]);
  cluster.campaign(1n);
  cluster.isolate(3n);
  for (let i = 0; i < 5; i++) cluster.propose(1n, `v${i}`);
  assert.deepEqual(cluster.appliedData(3n), []);
  cluster.heal();
  cluster.tickAll(3);
  assert.deepEqual(cluster.appliedData(3n), ["v0", "v1", "v2", "v3", "v4"]);
});
