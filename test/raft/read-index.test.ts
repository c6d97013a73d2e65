import { test } from "node:test";
import assert from "node:assert/strict";
import { Cluster } from "./harness.js";
import type { ReadState } from "../../src/raft/read-only.js";
import { MessageType } from "../../src/raft/messages.js";
import { ReadOnlyOption } from "../../src/raft/config.js";
import { RawNode } from "../../src/raft/raw-node.js";
import { MemoryStorage } from "../../src/raft/storage.js";
import { SeededRandom } from "../../src/raft/random.js";
import { RaftInvariantError } from "../../src/raft/errors.js";

const bytes = (s: string) => new TextEncoder().encode(s);

/** Collects read states instead of letting the pump discard them. */
function collectReads(cluster: Cluster, id: bigint): ReadState[] {
  const reads: ReadState[] = [];
  const test = cluster.get(id);
  const original = cluster.handleReady.bind(cluster);
  cluster.handleReady = (node, ready) => {
    if (node === test) reads.push(...ready.readStates);
    return original(node, ready);
  };
  return reads;
}

test("safe ReadIndex: the leader answers only after a heartbeat quorum confirms it", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n]);
  cluster.campaign(1n);
  cluster.propose(1n, "w");
  const reads = collectReads(cluster, 1n);
  cluster.isolate(1n);
  cluster.get(1n).node.readIndex(bytes("r1"));
  cluster.pump();
  assert.equal(reads.length, 0, "no quorum, no answer");
  cluster.heal();
  cluster.tickAll(2);
  assert.equal(reads.length, 1);
  assert.equal(new TextDecoder().decode(reads[0]!.requestContext), "r1");
  assert.equal(reads[0]!.index, cluster.raft(1n).log.committed);
});

test("ReadIndex is not served before the new leader commits an entry of its term", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n], { checkQuorum: false });
  cluster.campaign(1n);
  cluster.propose(1n, "w");
  const reads = collectReads(cluster, 2n);
  // Node 2 wins, but its empty entry cannot be replicated yet.
  cluster.dropIf = (m) => m.from === 2n && m.type === MessageType.MsgApp;
  cluster.campaign(2n);
  assert.deepEqual(cluster.leaders(), [2n]);
  cluster.get(2n).node.readIndex(bytes("early"));
  cluster.tickAll(3);
  assert.equal(reads.length, 0);
  assert.equal(cluster.raft(2n).pendingReadIndexMessages.length, 1);
  cluster.dropIf = undefined;
  cluster.tickAll(3);
  assert.equal(reads.length, 1);
  assert.equal(cluster.raft(2n).log.term(reads[0]!.index), cluster.raft(2n).term, "index covers the leader's own entry");
});

test("a follower's read is forwarded to the leader and answered with the leader's commit index", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n]);
  cluster.campaign(1n);
  cluster.propose(1n, "w");
  const reads = collectReads(cluster, 3n);
  cluster.get(3n).node.readIndex(bytes("f"));
  cluster.pump();
  assert.equal(reads.length, 1);
  assert.equal(reads[0]!.index, cluster.raft(1n).log.committed);
  assert.equal(cluster.sentOfType(MessageType.MsgReadIndexResp).length, 1);
});

test("a single voter answers reads at once", () => {
  const cluster = Cluster.bootstrap([1n]);
  cluster.campaign(1n);
  const reads = collectReads(cluster, 1n);
  cluster.get(1n).node.readIndex(bytes("solo"));
  cluster.pump();
  assert.equal(reads.length, 1);
});

test("lease-based reads answer without a heartbeat round and require check-quorum", () => {
  const cluster = Cluster.bootstrap([1n, 2n, 3n], { readOnlyOption: ReadOnlyOption.LeaseBased, checkQuorum: true });
  cluster.campaign(1n);
  const reads = collectReads(cluster, 1n);
  cluster.isolate(1n);
  cluster.get(1n).node.readIndex(bytes("lease"));
  cluster.pump();
  assert.equal(reads.length, 1);
  assert.throws(
    () => new RawNode({ id: 1n, storage: new MemoryStorage(), random: new SeededRandom(1), readOnlyOption: ReadOnlyOption.LeaseBased, checkQuorum: false }),
    RaftInvariantError,
  );
});

test("a restarted single voter whose persisted commit index lags does not answer reads from it", () => {
  const cluster = Cluster.bootstrap([1n]);
  cluster.campaign(1n);
  cluster.propose(1n, "a");
  cluster.propose(1n, "b");
  const old = cluster.get(1n);
  const last = old.node.raft.log.lastIndex();
  // The commit index of the last entries was not persisted before the crash.
  old.storage.setHardState({ ...old.storage.hardStateSnapshot(), commit: last - 2 });
  // Restarting from the persisted commit index; the application re-applies the log (and the
  // bootstrap conf changes in it, which restores the configuration).
  const restarted = cluster.add(1n, old.storage);
  cluster.pump();
  assert.equal(restarted.node.raft.log.committed, last - 2);
  const reads = collectReads(cluster, 1n);
  restarted.node.campaign();
  cluster.handleReady(restarted, restarted.node.ready()); // the vote is durable: leader now
  assert.equal(restarted.node.raft.state, "leader");
  restarted.node.readIndex(bytes("after-restart"));
  assert.equal(restarted.node.raft.readStates.length, 0, "not answered from the lagging commit index");
  assert.equal(restarted.node.raft.pendingReadIndexMessages.length, 1);
  cluster.pump();
  assert.equal(reads.length, 1);
  assert.ok(reads[0]!.index >= last, `read index ${reads[0]!.index} covers everything committed before (${last})`);
});
