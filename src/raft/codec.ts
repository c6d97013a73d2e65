/**
 * Lossless conversion between the core's plain objects and etcd's raftpb
 * protobuf encoding (proto/raftpb/raft.proto), for the transport and the WAL.
 * Indexes and terms travel as uint64; the core keeps them as numbers and refuses
 * (throws) any value beyond 2^53 rather than round it.
 */
import { create, toBinary, fromBinary } from "@bufbuild/protobuf";
import * as pb from "../gen/raftpb/raft_pb.js";
import type { ConfChange, ConfChangeV2, ConfState, Entry, HardState, Message, Snapshot } from "./messages.js";
import { RaftInvariantError } from "./errors.js";

function toNumber(value: bigint, field: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new RaftInvariantError(`${field} ${value} exceeds 2^53`);
  return Number(value);
}

function toUint64(value: number, field: string): bigint {
  if (!Number.isSafeInteger(value) || value < 0) throw new RaftInvariantError(`${field} ${value} is not a uint64`);
  return BigInt(value);
}

export function entryToProto(entry: Entry): pb.Entry {
  return create(pb.EntrySchema, {
    Type: entry.type,
    Term: toUint64(entry.term, "term"),
    Index: toUint64(entry.index, "index"),
    Data: entry.data,
  });
}

export function entryFromProto(entry: pb.Entry): Entry {
  return { type: entry.Type, term: toNumber(entry.Term, "term"), index: toNumber(entry.Index, "index"), data: entry.Data };
}

export function confStateToProto(state: ConfState): pb.ConfState {
  return create(pb.ConfStateSchema, {
    voters: [...state.voters],
    learners: [...state.learners],
    votersOutgoing: [...state.votersOutgoing],
    learnersNext: [...state.learnersNext],
    autoLeave: state.autoLeave,
  });
}

export function confStateFromProto(state: pb.ConfState | undefined): ConfState {
  return {
    voters: [...(state?.voters ?? [])],
    learners: [...(state?.learners ?? [])],
    votersOutgoing: [...(state?.votersOutgoing ?? [])],
    learnersNext: [...(state?.learnersNext ?? [])],
    autoLeave: state?.autoLeave ?? false,
  };
}

export function snapshotToProto(snapshot: Snapshot): pb.Snapshot {
  return create(pb.SnapshotSchema, {
    data: snapshot.data,
    metadata: {
      confState: confStateToProto(snapshot.metadata.confState),
      index: toUint64(snapshot.metadata.index, "snapshot index"),
      term: toUint64(snapshot.metadata.term, "snapshot term"),
    },
  });
}

export function snapshotFromProto(snapshot: pb.Snapshot): Snapshot {
  return {
    data: snapshot.data,
    metadata: {
      confState: confStateFromProto(snapshot.metadata?.confState),
      index: toNumber(snapshot.metadata?.index ?? 0n, "snapshot index"),
      term: toNumber(snapshot.metadata?.term ?? 0n, "snapshot term"),
    },
  };
}

export function messageToProto(m: Message): pb.Message {
  return create(pb.MessageSchema, {
    type: m.type,
    to: m.to,
    from: m.from,
    term: toUint64(m.term, "term"),
    logTerm: toUint64(m.logTerm, "log term"),
    index: toUint64(m.index, "index"),
    entries: m.entries.map(entryToProto),
    commit: toUint64(m.commit, "commit"),
    snapshot: m.snapshot === undefined ? undefined : snapshotToProto(m.snapshot),
    reject: m.reject,
    rejectHint: toUint64(m.rejectHint, "reject hint"),
    context: m.context,
  });
}

export function messageFromProto(m: pb.Message): Message {
  const result: Message = {
    type: m.type,
    to: m.to,
    from: m.from,
    term: toNumber(m.term, "term"),
    logTerm: toNumber(m.logTerm, "log term"),
    index: toNumber(m.index, "index"),
    entries: m.entries.map(entryFromProto),
    commit: toNumber(m.commit, "commit"),
    reject: m.reject,
    rejectHint: toNumber(m.rejectHint, "reject hint"),
    context: m.context,
  };
  // Older etcd versions send an empty snapshot on every message; keep only real ones.
  if (m.snapshot !== undefined && (m.snapshot.metadata?.index ?? 0n) !== 0n) result.snapshot = snapshotFromProto(m.snapshot);
  return result;
}

export function encodeMessage(m: Message): Uint8Array {
  return toBinary(pb.MessageSchema, messageToProto(m));
}

export function decodeMessage(bytes: Uint8Array): Message {
  return messageFromProto(fromBinary(pb.MessageSchema, bytes));
}

export function encodeEntry(entry: Entry): Uint8Array {
  return toBinary(pb.EntrySchema, entryToProto(entry));
}

export function decodeEntry(bytes: Uint8Array): Entry {
  return entryFromProto(fromBinary(pb.EntrySchema, bytes));
}

export function encodeHardState(state: HardState): Uint8Array {
  return toBinary(
    pb.HardStateSchema,
    create(pb.HardStateSchema, { term: toUint64(state.term, "term"), vote: state.vote, commit: toUint64(state.commit, "commit") }),
  );
}

export function decodeHardState(bytes: Uint8Array): HardState {
  const state = fromBinary(pb.HardStateSchema, bytes);
  return { term: toNumber(state.term, "term"), vote: state.vote, commit: toNumber(state.commit, "commit") };
}

export function encodeSnapshot(snapshot: Snapshot): Uint8Array {
  return toBinary(pb.SnapshotSchema, snapshotToProto(snapshot));
}

export function decodeSnapshot(bytes: Uint8Array): Snapshot {
  return snapshotFromProto(fromBinary(pb.SnapshotSchema, bytes));
}

export function encodeConfState(state: ConfState): Uint8Array {
  return toBinary(pb.ConfStateSchema, confStateToProto(state));
}

export function decodeConfState(bytes: Uint8Array): ConfState {
  return confStateFromProto(fromBinary(pb.ConfStateSchema, bytes));
}

export function encodeConfChange(change: ConfChange): Uint8Array {
  return toBinary(
    pb.ConfChangeSchema,
    create(pb.ConfChangeSchema, { id: change.id, type: change.type, nodeId: change.nodeId, context: change.context }),
  );
}

export function decodeConfChange(bytes: Uint8Array): ConfChange {
  const change = fromBinary(pb.ConfChangeSchema, bytes);
  return { id: change.id, type: change.type, nodeId: change.nodeId, context: change.context };
}

export function encodeConfChangeV2(change: ConfChangeV2): Uint8Array {
  return toBinary(
    pb.ConfChangeV2Schema,
    create(pb.ConfChangeV2Schema, {
      transition: change.transition,
      changes: change.changes.map((c) => ({ type: c.type, nodeId: c.nodeId })),
      context: change.context,
    }),
  );
}

export function decodeConfChangeV2(bytes: Uint8Array): ConfChangeV2 {
  const change = fromBinary(pb.ConfChangeV2Schema, bytes);
  return {
    transition: change.transition,
    changes: change.changes.map((c) => ({ type: c.type, nodeId: c.nodeId })),
    context: change.context,
  };
}
