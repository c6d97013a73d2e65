/**
 * The core's own shapes for raft messages and entries: plain objects, cheaper
 * than protobuf-es messages on the hot path. `codec.ts` converts them losslessly
 * to and from etcd's raftpb encoding for the transport and the WAL.
 *
 * Indexes and terms are `number` (exact up to 2^53, far beyond any log); node ids
 * are `bigint` (random 64-bit member ids). Node id 0n means "none".
 */
import { MessageType, EntryType, ConfChangeType, ConfChangeTransition } from "../gen/raftpb/raft_pb.js";

export { MessageType, EntryType, ConfChangeType, ConfChangeTransition };

export type NodeId = bigint;
export const None: NodeId = 0n;

export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  data: Uint8Array;
}

export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
  votersOutgoing: NodeId[];
  learnersNext: NodeId[];
  autoLeave: boolean;
}

export interface SnapshotMetadata {
  confState: ConfState;
  index: number;
  term: number;
}

export interface Snapshot {
  data: Uint8Array;
  metadata: SnapshotMetadata;
}

export interface HardState {
  term: number;
  vote: NodeId;
  commit: number;
}

export interface Message {
  type: MessageType;
  to: NodeId;
  from: NodeId;
  term: number;
  /** Term of the entry at `index` (for MsgApp: the entry just before `entries`). */
  logTerm: number;
  index: number;
  entries: Entry[];
  commit: number;
  snapshot?: Snapshot;
  reject: boolean;
  rejectHint: number;
  context: Uint8Array;
}

/** A single membership change (etcd's raftpb.ConfChange). */
export interface ConfChange {
  id: bigint;
  type: ConfChangeType;
  nodeId: NodeId;
  context: Uint8Array;
}

/** etcd's raftpb.ConfChangeV2; only changes that the simple protocol allows are supported. */
export interface ConfChangeV2 {
  transition: ConfChangeTransition;
  changes: { type: ConfChangeType; nodeId: NodeId }[];
  context: Uint8Array;
}

const emptyBytes = new Uint8Array(0);

export function emptyConfState(): ConfState {
  return { voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
}

export function emptySnapshot(): Snapshot {
  return { data: emptyBytes, metadata: { confState: emptyConfState(), index: 0, term: 0 } };
}

export function isEmptySnapshot(snapshot: Snapshot | undefined): boolean {
  return snapshot === undefined || snapshot.metadata.index === 0;
}

export function emptyHardState(): HardState {
  return { term: 0, vote: None, commit: 0 };
}

export function isEmptyHardState(state: HardState): boolean {
  return state.term === 0 && state.vote === None && state.commit === 0;
}

export function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

/** Builds a message with every field defaulted; `fields` overrides. */
export function message(fields: Partial<Message> & { type: MessageType }): Message {
  return {
    to: None,
    from: None,
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    context: emptyBytes,
    ...fields,
  };
}

/** The size an entry counts for in byte limits: its payload, as etcd counts it. */
export function entryPayloadBytes(entry: Entry): number {
  return entry.data.length;
}

/** Approximate encoded size, for per-message and per-Ready byte limits. */
export function entryBytes(entry: Entry): number {
  return entry.data.length + 24;
}

export function entriesBytes(entries: readonly Entry[]): number {
  let total = 0;
  for (const entry of entries) total += entryBytes(entry);
  return total;
}

const localMessageTypes = new Set<MessageType>([
  MessageType.MsgHup,
  MessageType.MsgBeat,
  MessageType.MsgUnreachable,
  MessageType.MsgSnapStatus,
  MessageType.MsgCheckQuorum,
]);

/** Messages that only the local node may generate; stepping one from the network is refused. */
export function isLocalMessage(type: MessageType): boolean {
  return localMessageTypes.has(type);
}

const responseMessageTypes = new Set<MessageType>([
  MessageType.MsgAppResp,
  MessageType.MsgVoteResp,
  MessageType.MsgHeartbeatResp,
  MessageType.MsgUnreachable,
  MessageType.MsgReadIndexResp,
  MessageType.MsgPreVoteResp,
]);

export function isResponseMessage(type: MessageType): boolean {
  return responseMessageTypes.has(type);
}

/**
 * Messages that acknowledge or depend on this node's durable state: they may be
 * sent only after the Ready that produced them is persisted (hard state, entries,
 * snapshot fsynced). Everything else may be sent at once.
 */
const afterPersistMessageTypes = new Set<MessageType>([
  MessageType.MsgAppResp,
  MessageType.MsgVote,
  MessageType.MsgVoteResp,
]);

export function mustSendAfterPersist(type: MessageType): boolean {
  return afterPersistMessageTypes.has(type);
}

export function voteResponseType(type: MessageType): MessageType {
  switch (type) {
    case MessageType.MsgVote:
      return MessageType.MsgVoteResp;
    case MessageType.MsgPreVote:
      return MessageType.MsgPreVoteResp;
    default:
      throw new Error(`not a vote message: ${MessageType[type]}`);
  }
}

export function describeMessage(m: Message): string {
  const parts = [`${m.from}->${m.to} ${MessageType[m.type]} term=${m.term}`];
  if (m.type === MessageType.MsgApp || m.type === MessageType.MsgAppResp || m.type === MessageType.MsgVote || m.type === MessageType.MsgPreVote) {
    parts.push(`logTerm=${m.logTerm} index=${m.index}`);
  }
  if (m.entries.length > 0) parts.push(`entries=${m.entries.length}[${m.entries[0]!.index}..${m.entries[m.entries.length - 1]!.index}]`);
  if (m.commit > 0) parts.push(`commit=${m.commit}`);
  if (m.reject) parts.push(`reject hint=${m.rejectHint}`);
  if (m.snapshot !== undefined) parts.push(`snapshot=${m.snapshot.metadata.index}@${m.snapshot.metadata.term}`);
  return parts.join(" ");
}
