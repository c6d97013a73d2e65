import { test } from "node:test";
import assert from "node:assert/strict";
import { Cluster, presetStorage, entry } from "./harness.js";
import { MemoryStorage } from "../../src/raft/storage.js";
import { RawNode } from "../../src/raft/raw-node.js";
import { SeededRandom } from "../../src/raft/random.js";
import { MessageType, message } from "../../src/raft/messages.js";
import { StateType } from "../../src/raft/raft.js";

test("a single voter elects itself on campaign and commits once its log is persisted", () => {
  const storage = new MemoryStorage();
  const node = new RawNode({ id: 1n, storage, random: new SeededRandom(1) });
  node.bootstrap([{ id: 1n }]);
  const persist = () => {
    const rd = node.ready();
    storage.append(rd.entries);
    if (rd.hardState !== undefined) storage.setHardState(rd.hardState);
    node.advance();
    return rd;
  };
  persist();
  node.campaign();
  // The vote for itself counts only after the term and vote are durable.
  assert.equal(node.raft.state, StateType.Candidate);
  const voteReady = persist();
  assert.equal(voteReady.hardState?.vote, 1n);
  assert.equal(node.raft.state, StateType.Leader);
  const leaderReady = node.ready();
  assert.equal(leaderReady.entries.length, 1, "the leader's empty entry");
  assert.equal(node.raft.log.committed, 1, "not committed before it is persisted");
  storage.append(leaderReady.entries);
  if (leaderReady.hardState) storage.setHardState(leaderReady.hardState);
  node.advance();
  assert.equal(node.raft.log.committed, 2, "committed after advance reports it persisted");
  assert.equal(node.propose(new TextEncoder().encode("x")), undefined);
  const proposal = node.ready();
  storage.append(proposal.entries);
  node.advance();
  assert.deepEqual(proposal.committedEntries.map((e) => e.index), [2]);
  const applied = node.ready();
  assert.deepEqual(applied.committedEntries.map((e) => e.index), [3]);
});

test("a single voter elects itself after its first election timeout", () => {
  const cluster = Cluster.bootstrap([1n]);
  cluster.tickAll(20);
  assert.deepEqual(cluster.leaders(), [1n]);
});

test("randomized election timeout lies in [electionTick, 2 * electionTick)", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n], { electionTick: 10 });
  const seen = new Set<number>();
  const raft = cluster.raft(1n);
  for (let i = 0; i < 500; i++) {
    raft.resetRandomizedElectionTimeout();
    seen.add(raft.randomizedElectionTimeout);
  }
  assert.equal(Math.min(...seen), 10);
  assert.equal(Math.max(...seen), 19);
});

test("three nodes elect exactly one leader, and followers learn it", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n]);
  cluster.tickAll(40);
  const leaders = cluster.leaders();
  assert.equal(leaders.length, 1);
  for (const id of [1n, 2n, 3n]) assert.equal(cluster.raft(id).lead, leaders[0]);
});

test("a node votes at most once per term", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n], { preVote: false, checkQuorum: false });
  const voter = cluster.get(3n).node;
  const request = (from: bigint) => message({ type: MessageType.MsgVote, from, to: 3n, term: 5, index: 10, logTerm: 5 });
  voter.step(request(1n));
  voter.step(request(2n));
  const rd = voter.ready();
  const responses = rd.messagesAfterPersist.filter((m) => m.type === MessageType.MsgVoteResp);
  assert.deepEqual(responses.map((m) => [m.to, m.reject]), [[1n, false], [2n, true]]);
  assert.equal(rd.hardState?.vote, 1n);
});

test("a voter rejects a candidate whose log is less up to date", () => {
  const storage = presetStorage([1n, 2n, 3n], [entry(2, 2), entry(3, 3)], 3);
  const cluster = new Cluster();
  cluster.add(1n, storage, { preVote: false, checkQuorum: false });
  const voter = cluster.get(1n).node;
  voter.step(message({ type: MessageType.MsgVote, from: 2n, to: 1n, term: 4, index: 5, logTerm: 2 }));
  voter.step(message({ type: MessageType.MsgVote, from: 3n, to: 1n, term: 5, index: 3, logTerm: 3 }));
  const responses = voter.ready().messagesAfterPersist;
  assert.deepEqual(responses.map((m) => [m.to, m.term, m.reject]), [[2n, 4, true], [3n, 5, false]]);
});

test("check-quorum: an isolated leader steps down after an election timeout", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n], { checkQuorum: true });
  cluster.campaign(1n);
  assert.deepEqual(cluster.leaders(), [1n]);
  cluster.isolate(1n);
  for (let i = 0; i < 25; i++) {
    cluster.tick(1n);
    cluster.pump();
  }
  assert.equal(cluster.raft(1n).state, StateType.Follower);
});

test("without check-quorum an isolated leader keeps leading", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n], { checkQuorum: false });
  cluster.campaign(1n);
  cluster.isolate(1n);
  for (let i = 0; i < 25; i++) {
    cluster.tick(1n);
    cluster.pump();
  }
  assert.equal(cluster.raft(1n).state, StateType.Leader);
});

test("a follower that hears from a live leader ignores vote requests (leader lease)", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n], { checkQuorum: true, preVote: false });
  cluster.campaign(1n);
  const follower = cluster.get(2n).node;
  const term = follower.raft.term;
  follower.step(message({ type: MessageType.MsgVote, from: 3n, to: 2n, term: term + 1, index: 100, logTerm: term }));
  assert.equal(follower.raft.term, term, "term unchanged");
  assert.equal(follower.raft.lead, 1n);
  assert.equal(follower.hasReady(), false, "no answer at all");
});

test("a vote request forced by a leadership transfer overrides the lease", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n], { checkQuorum: true });
  cluster.campaign(1n);
  cluster.get(1n).node.transferLeader(3n);
  cluster.pump();
  assert.deepEqual(cluster.leaders(), [3n]);
  assert.equal(cluster.raft(1n).lead, 3n);
});

test("pre-vote: a partitioned node rejoining does not disrupt the leader", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n], { preVote: true, checkQuorum: true });
  cluster.campaign(1n);
  const term = cluster.raft(1n).term;
  cluster.isolate(3n);
  // The isolated node times out many times: pre-vote fails, so its term does not grow.
  for (let i = 0; i < 100; i++) {
    cluster.tick(3n);
    cluster.pump();
  }
  assert.equal(cluster.raft(3n).term, term);
  assert.equal(cluster.raft(3n).state, StateType.PreCandidate);
  cluster.heal();
  cluster.tickAll(5);
  assert.deepEqual(cluster.leaders(), [1n]);
  assert.equal(cluster.raft(1n).term, term, "the leader was not disrupted");
  assert.equal(cluster.raft(3n).lead, 1n);
});

test("without pre-vote a rejoining partitioned candidate disrupts the leader", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n], { preVote: false, checkQuorum: false });
  cluster.campaign(1n);
  const term = cluster.raft(1n).term;
  cluster.isolate(3n);
  for (let i = 0; i < 100; i++) cluster.tick(3n);
  cluster.pump();
  assert.ok(cluster.raft(3n).term > term + 1);
  cluster.heal();
  cluster.tickAll(25);
  assert.ok(cluster.raft(1n).term > term, "the leader was deposed by the higher term");
});

test("a candidate rejected by a majority returns to follower", () => {
  const cluster = new Cluster();
  cluster.add(1n, presetStorage([1n, 2n, 3n], [entry(2, 1)], 2), { preVote: false });
  cluster.add(2n, presetStorage([1n, 2n, 3n], [entry(2, 1), entry(3, 2)], 2), { preVote: false });
  cluster.add(3n, presetStorage([1n, 2n, 3n], [entry(2, 1), entry(3, 2)], 2), { preVote: false });
  cluster.campaign(1n);
  assert.equal(cluster.raft(1n).state, StateType.Follower);
  assert.equal(cluster.raft(1n).term, 3);
  assert.deepEqual(cluster.leaders(), []);
  cluster.campaign(2n);
  assert.deepEqual(cluster.leaders(), [2n]);
});
