import { test } from "node:test";
import assert from "node:assert/strict";
import { MemoryStorage } from "../../src/raft/storage.js";
import { ErrCompacted, ErrSnapOutOfDate, ErrUnavailable } from "../../src/raft/errors.js";
import { entry } from "./harness.js";
import { RaftLog } from "../../src/raft/log.js";
import { Inflights } from "../../src/raft/inflights.js";
import { majorityCommittedIndex, majorityVoteResult, jointCommittedIndex } from "../../src/raft/quorum.js";

const conf = { voters: [1n], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };

function storageWith(last: number): MemoryStorage {
  const storage = new MemoryStorage();
  const entries = [];
  for (let i = 1; i <= last; i++) entries.push(entry(i, i <= 3 ? 1 : 2, `e${i}`));
  storage.append(entries);
  return storage;
}

test("MemoryStorage: entries, terms and bounds", () => {
  const storage = storageWith(6);
  assert.equal(storage.firstIndex(), 1);
  assert.equal(storage.lastIndex(), 6);
  assert.equal(storage.term(3), 1);
  assert.equal(storage.term(4), 2);
  assert.deepEqual(storage.entries(2, 5, Infinity).map((e) => e.index), [2, 3, 4]);
  assert.throws(() => storage.entries(2, 8, Infinity), (e) => e === ErrUnavailable);
  assert.throws(() => storage.term(7), (e) => e === ErrUnavailable);
});

test("MemoryStorage: maxBytes limits entries but always returns one", () => {
  const storage = storageWith(6);
  assert.equal(storage.entries(1, 7, 0).length, 1);
  assert.equal(storage.entries(1, 7, 54).length, 2);
});

test("MemoryStorage: compaction and snapshots", () => {
  const storage = storageWith(6);
  storage.createSnapshot(4, conf, new Uint8Array([1]));
  storage.compact(4);
  assert.equal(storage.firstIndex(), 5);
  assert.equal(storage.term(4), 2, "the compacted boundary keeps its term");
  assert.throws(() => storage.term(3), (e) => e === ErrCompacted);
  assert.throws(() => storage.entries(4, 6, Infinity), (e) => e === ErrCompacted);
  assert.throws(() => storage.compact(3), (e) => e === ErrCompacted);
  assert.throws(() => storage.createSnapshot(3, conf, new Uint8Array()), (e) => e === ErrSnapOutOfDate);
  assert.deepEqual(storage.initialState().confState.voters, [1n]);
});

test("MemoryStorage: append truncates a conflicting suffix", () => {
  const storage = storageWith(6);
  storage.append([entry(4, 3, "x"), entry(5, 3, "y")]);
  assert.equal(storage.lastIndex(), 5);
  assert.equal(storage.term(4), 3);
});

test("RaftLog: findConflictByTerm skips back over larger terms", () => {
  const storage = storageWith(6);
  const log = new RaftLog(storage, Infinity);
  assert.deepEqual(log.findConflictByTerm(6, 1), { index: 3, term: 1 });
  assert.deepEqual(log.findConflictByTerm(6, 2), { index: 6, term: 2 });
  assert.deepEqual(log.findConflictByTerm(2, 1), { index: 2, term: 1 });
});

test("RaftLog: a conflict at or below the commit index is a broken invariant", () => {
  const storage = storageWith(6);
  const log = new RaftLog(storage, Infinity);
  log.commitTo(5);
  assert.throws(() => log.maybeAppend(3, 1, 6, [entry(4, 3)]), /conflicts with committed/);
  assert.equal(log.maybeAppend(5, 2, 6, [entry(6, 2, "e6"), entry(7, 2)]), 7);
  assert.equal(log.maybeAppend(5, 9, 6, [entry(6, 9)]), undefined, "mismatching previous term");
});

test("Inflights: bounded by messages and by bytes", () => {
  const byCount = new Inflights(2, 0);
  byCount.add(1, 10);
  byCount.add(2, 10);
  assert.equal(byCount.full(), true);
  byCount.freeLE(1);
  assert.equal(byCount.full(), false);
  const byBytes = new Inflights(100, 25);
  byBytes.add(1, 10);
  byBytes.add(2, 10);
  assert.equal(byBytes.full(), false);
  byBytes.add(3, 10);
  assert.equal(byBytes.full(), true);
  assert.throws(() => byBytes.add(4, 1), /full/);
});

test("quorum: majority commit index and votes", () => {
  const voters = new Set([1n, 2n, 3n, 4n, 5n]);
  const match = new Map([[1n, 10], [2n, 9], [3n, 8], [4n, 2], [5n, 1]]);
  assert.equal(majorityCommittedIndex(voters, (id) => match.get(id)), 8);
  assert.equal(majorityVoteResult(voters, new Map([[1n, true], [2n, true]])), "pending");
  assert.equal(majorityVoteResult(voters, new Map([[1n, true], [2n, true], [3n, true]])), "won");
  assert.equal(majorityVoteResult(voters, new Map([[1n, false], [2n, false], [3n, false]])), "lost");
  const joint = { incoming: new Set([1n, 2n, 3n]), outgoing: new Set([3n, 4n, 5n]) };
  assert.equal(jointCommittedIndex(joint, (id) => match.get(id)), 2, "both halves must agree");
});
