import { test } from "node:test";
import assert from "node:assert/strict";
import { fromBinary, toBinary, create } from "@bufbuild/protobuf";
import * as pb from "../../src/gen/raftpb/raft_pb.js";
import {
  decodeConfChange, decodeConfChangeV2, decodeEntry, decodeHardState, decodeMessage, decodeSnapshot,
  encodeConfChange, encodeConfChangeV2, encodeEntry, encodeHardState, encodeMessage, encodeSnapshot, messageToProto,
} from "../../src/raft/codec.js";
import { ConfChangeTransition, ConfChangeType, EntryType, MessageType, message } from "../../src/raft/messages.js";
import type { Message } from "../../src/raft/messages.js";
import { RaftInvariantError } from "../../src/raft/errors.js";

const bigId = 0xfedcba9876543210n;

test("a message with entries and a snapshot round-trips losslessly through raftpb bytes", () => {
  const m: Message = message({
    type: MessageType.MsgApp,
    to: bigId,
    from: 2n,
    term: 7,
    logTerm: 6,
    index: 41,
    entries: [
      { term: 7, index: 42, type: EntryType.EntryNormal, data: new Uint8Array([1, 2, 3]) },
      { term: 7, index: 43, type: EntryType.EntryConfChange, data: new Uint8Array([9]) },
    ],
    commit: 40,
    reject: true,
    rejectHint: 12,
    context: new Uint8Array([5, 5]),
    snapshot: {
      data: new Uint8Array([7]),
      metadata: { index: 30, term: 5, confState: { voters: [1n, bigId], learners: [3n], votersOutgoing: [], learnersNext: [], autoLeave: false } },
    },
  });
  assert.deepEqual(decodeMessage(encodeMessage(m)), m);
});

test("field numbers are etcd's: type=1, to=2, from=3, term=4, index=6, commit=8", () => {
  const bytes = encodeMessage(message({ type: MessageType.MsgApp, to: 2n, from: 1n, term: 5, index: 9, commit: 4 }));
  // tag = field << 3 | wire type 0 (varint)
  assert.deepEqual([...bytes], [0x08, 3, 0x10, 2, 0x18, 1, 0x20, 5, 0x30, 9, 0x40, 4]);
  const entry = encodeEntry({ term: 2, index: 3, type: EntryType.EntryConfChange, data: new Uint8Array([0xaa]) });
  // Entry: Type=1, Term=2, Index=3, Data=4
  assert.deepEqual([...entry], [0x08, 1, 0x10, 2, 0x18, 3, 0x22, 1, 0xaa]);
  assert.deepEqual([...encodeHardState({ term: 1, vote: 2n, commit: 3 })], [0x08, 1, 0x10, 2, 0x18, 3]);
});

test("enum values are etcd's", () => {
  assert.equal(MessageType.MsgPreVote, 17);
  assert.equal(MessageType.MsgReadIndexResp, 16);
  assert.equal(MessageType.MsgForgetLeader, 23);
  assert.equal(EntryType.EntryConfChangeV2, 2);
  assert.equal(ConfChangeType.ConfChangeAddLearnerNode, 3);
});

test("entries, hard state, snapshots and conf changes round-trip", () => {
  const entry = { term: 3, index: 2 ** 40, type: EntryType.EntryNormal, data: new Uint8Array([1]) };
  assert.deepEqual(decodeEntry(encodeEntry(entry)), entry);
  const hard = { term: 9, vote: bigId, commit: 100 };
  assert.deepEqual(decodeHardState(encodeHardState(hard)), hard);
  const snapshot = {
    data: new Uint8Array([1, 2]),
    metadata: { index: 5, term: 2, confState: { voters: [1n, 2n], learners: [], votersOutgoing: [1n], learnersNext: [3n], autoLeave: true } },
  };
  assert.deepEqual(decodeSnapshot(encodeSnapshot(snapshot)), snapshot);
  const change = { id: 77n, type: ConfChangeType.ConfChangeRemoveNode, nodeId: bigId, context: new Uint8Array([4]) };
  assert.deepEqual(decodeConfChange(encodeConfChange(change)), change);
  const v2 = {
    transition: ConfChangeTransition.ConfChangeTransitionJointExplicit,
    changes: [{ type: ConfChangeType.ConfChangeAddNode, nodeId: 4n }],
    context: new Uint8Array([1]),
  };
  assert.deepEqual(decodeConfChangeV2(encodeConfChangeV2(v2)), v2);
});

test("an index beyond 2^53 is refused, not rounded", () => {
  const bytes = toBinary(pb.MessageSchema, create(pb.MessageSchema, { type: pb.MessageType.MsgApp, index: 2n ** 60n }));
  assert.throws(() => decodeMessage(bytes), RaftInvariantError);
  assert.throws(() => messageToProto(message({ type: MessageType.MsgApp, index: 2 ** 53 + 2 })), RaftInvariantError);
});

test("an empty snapshot field, as older etcd versions send, decodes as no snapshot", () => {
  const bytes = toBinary(pb.MessageSchema, create(pb.MessageSchema, { type: pb.MessageType.MsgHeartbeat, snapshot: {} }));
  assert.equal(decodeMessage(bytes).snapshot, undefined);
  assert.equal(fromBinary(pb.MessageSchema, bytes).type, pb.MessageType.MsgHeartbeat);
});
