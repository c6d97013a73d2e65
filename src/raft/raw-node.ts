/**
 * RawNode: the application's handle on one raft node. It is not thread-aware
 * and owns no timer or I/O; the application drives it:
 *
 * ```
 * loop {
 *   on timer:           node.tick()
 *   on network message: node.step(message)
 *   on client request:  node.propose(data) / node.readIndex(context) / ...
 *   if (node.hasReady()) {
 *     const rd = node.ready();
 *     send(rd.messages);                           // may go at once, even before persisting
 *     persist rd.hardState, rd.entries, rd.snapshot to the WAL and fsync;
 *     update Storage (MemoryStorage: applySnapshot, append, setHardState);
 *     send(rd.messagesAfterPersist);               // only now: they acknowledge durable state
 *     apply rd.snapshot (if any), then rd.committedEntries, calling
 *       node.applyConfChange(...) for EntryConfChange / EntryConfChangeV2 entries;
 *     serve rd.readStates once the applied index reaches each one's index;
 *     node.advance();
 *   }
 * }
 * ```
 *
 * Persistence ordering, as etcd's raft documents it: `messages` hold what may be
 * sent before this Ready's writes are durable — the leader's MsgApp, MsgSnap and
 * heartbeats (the leader counts its own log toward commit only after advance()
 * reports it persisted), pre-votes, forwarded proposals and reads, read index
 * answers, MsgTimeoutNow. `messagesAfterPersist` hold MsgAppResp, MsgVote and
 * MsgVoteResp: acknowledgements of entries, snapshots, terms and votes that
 * must be durable first. Sending everything after persisting is always correct.
 *
 * Between ready() and advance() the node may still tick and step; hasReady()
 * stays false until advance() is called. A snapshot from the leader is not
 * installed while the entries of an outstanding Ready are being applied (the
 * leader sends it again), so conf changes never apply on top of a newer snapshot.
 *
 * Starting:
 * - a new cluster: every initial member calls bootstrap(peers) on empty storage
 *   and persists the first Ready before doing anything else;
 * - a joining member: start with empty storage and no peers; it learns the log
 *   (or a snapshot) from the leader once a conf change adds it;
 * - a restart: construct from the persisted storage with `applied` set to the
 *   index the state machine already holds. The configuration comes from the
 *   storage snapshot's ConfState plus the conf change entries the application
 *   re-applies, so `applied` must not skip conf changes after the snapshot.
 *
 * Snapshots: the leader sends Storage.snapshot() to a follower that needs
 * compacted entries; its ConfState must include that follower, so take a new
 * snapshot after applying a conf change that adds a member. After sending one,
 * call reportSnapshot(id, "finish" | "failure"); after a failed send of any
 * message, reportUnreachable(id).
 */
import type { Config } from "./config.js";
import type { ConfChange, ConfChangeV2, ConfState, Entry, HardState, Message, NodeId, Snapshot } from "./messages.js";
import {
  ConfChangeType,
  EntryType,
  MessageType,
  None,
  hardStateEqual,
  isEmptyHardState,
  isLocalMessage,
  isResponseMessage,
  message,
} from "./messages.js";
import { CampaignType, Raft, StateType } from "./raft.js";
import type { ReadState } from "./read-only.js";
import type { RaftError } from "./errors.js";
import { ErrStepLocalMessage, ErrStepPeerNotFound, assert } from "./errors.js";
import { encodeConfChange, encodeConfChangeV2 } from "./codec.js";
import { applyConfChange } from "./membership.js";
import type { ProgressState } from "./progress.js";

export interface SoftState {
  lead: NodeId;
  raftState: StateType;
}

export interface Ready {
  /** Present when leader or role changed; need not be persisted. */
  softState?: SoftState;
  /** Present when term, vote or commit changed; persist before sending messagesAfterPersist. */
  hardState?: HardState;
  /** Linearizable reads confirmed by the leader: serve each once applied >= index. */
  readStates: ReadState[];
  /** Entries to append to stable storage (they may replace a conflicting suffix). */
  entries: Entry[];
  /** A snapshot to persist and apply before the committed entries. */
  snapshot?: Snapshot;
  /** Entries to apply to the state machine; already durable once this Ready is persisted. */
  committedEntries: Entry[];
  /** Messages that may be sent at once, before persisting this Ready. */
  messages: Message[];
  /** Messages to send only after hardState, entries and snapshot are durable. */
  messagesAfterPersist: Message[];
  /** Whether the writes of this Ready need an fsync (new entries, or a changed term or vote). */
  mustSync: boolean;
}

export interface ProgressStatus {
  match: number;
  next: number;
  state: ProgressState;
  isLearner: boolean;
  recentActive: boolean;
}

export interface Status {
  id: NodeId;
  hardState: HardState;
  softState: SoftState;
  applied: number;
  leadTransferee: NodeId;
  confState: ConfState;
  /** Only on the leader. */
  progress: Map<NodeId, ProgressStatus>;
}

export type SnapshotStatus = "finish" | "failure";

interface Outstanding {
  ready: Ready;
  toSelf: Message[];
}

export class RawNode {
  readonly raft: Raft;
  private previousSoftState: SoftState;
  private previousHardState: HardState;
  private outstanding: Outstanding | undefined = undefined;

  constructor(config: Config) {
    this.raft = new Raft(config);
    this.previousSoftState = this.softState();
    this.previousHardState = this.raft.hardState();
  }

  /**
   * Starts a new cluster: appends one committed ConfChangeAddNode entry per peer
   * (term 1) and applies them, as etcd does. Storage must be empty.
   */
  bootstrap(peers: readonly { id: NodeId; context?: Uint8Array }[]): void {
    assert(peers.length > 0, "raw node: must provide at least one peer to bootstrap");
    assert(this.raft.log.lastIndex() === 0, "raw node: can't bootstrap a nonempty storage");
    // The hard state is written with the first Ready; compare against an empty one.
    this.previousHardState = { term: 0, vote: None, commit: 0 };
    this.raft.becomeFollower(1, None);
    const entries: Entry[] = peers.map((peer, i) => ({
      term: 1,
      index: i + 1,
      type: EntryType.EntryConfChange,
      data: encodeConfChange({ id: 0n, type: ConfChangeType.ConfChangeAddNode, nodeId: peer.id, context: peer.context ?? new Uint8Array(0) }),
    }));
    this.raft.log.append(entries);
    this.raft.log.committed = entries.length;
    for (const peer of peers) {
      this.applyConfChange({ id: 0n, type: ConfChangeType.ConfChangeAddNode, nodeId: peer.id, context: new Uint8Array(0) });
    }
  }

  /** Advances the logical clock by one tick (election and heartbeat timeouts count ticks). */
  tick(): void {
    this.raft.tick();
  }

  /** Starts an election now (with pre-vote if configured). */
  campaign(): RaftError | undefined {
    return this.raft.step(message({ type: MessageType.MsgHup }));
  }

  /** Proposes data to be appended; ErrProposalDropped when there is no leader, a transfer runs, or the backlog is full. */
  propose(data: Uint8Array): RaftError | undefined {
    return this.raft.step(
      message({ type: MessageType.MsgProp, from: this.raft.id, entries: [{ term: 0, index: 0, type: EntryType.EntryNormal, data }] }),
    );
  }

  /** Proposes a membership change; it takes effect when its entry is applied through applyConfChange. */
  proposeConfChange(change: ConfChange | ConfChangeV2): RaftError | undefined {
    const isV2 = "changes" in change;
    const entry: Entry = {
      term: 0,
      index: 0,
      type: isV2 ? EntryType.EntryConfChangeV2 : EntryType.EntryConfChange,
      data: isV2 ? encodeConfChangeV2(change) : encodeConfChange(change),
    };
    return this.raft.step(message({ type: MessageType.MsgProp, from: this.raft.id, entries: [entry] }));
  }

  /** Applies a committed conf change; returns the new configuration, or an error if the change is invalid (nothing changes). */
  applyConfChange(change: ConfChange | ConfChangeV2): ConfState | RaftError {
    return applyConfChange(this.raft, change);
  }

  /** Steps a message received from the network. Local message types are refused. */
  step(m: Message): RaftError | undefined {
    if (isLocalMessage(m.type)) return ErrStepLocalMessage;
    if (isResponseMessage(m.type) && !this.raft.tracker.progress.has(m.from)) return ErrStepPeerNotFound;
    return this.raft.step(m);
  }

  /** Asks for a linearizable read index; the answer comes as a ReadState carrying `context`. */
  readIndex(context: Uint8Array): RaftError | undefined {
    return this.raft.step(
      message({ type: MessageType.MsgReadIndex, from: this.raft.id, entries: [{ term: 0, index: 0, type: EntryType.EntryNormal, data: context }] }),
    );
  }

  /** Asks the leader to hand leadership to `transferee` (which must be a voter). */
  transferLeader(transferee: NodeId): void {
    this.raft.step(message({ type: MessageType.MsgTransferLeader, from: transferee }));
  }

  /** Tells the leader that the last message to `id` could not be delivered. */
  reportUnreachable(id: NodeId): void {
    this.raft.step(message({ type: MessageType.MsgUnreachable, from: id }));
  }

  /** Tells the leader how sending a snapshot to `id` ended. */
  reportSnapshot(id: NodeId, status: SnapshotStatus): void {
    this.raft.step(message({ type: MessageType.MsgSnapStatus, from: id, reject: status === "failure" }));
  }

  private softState(): SoftState {
    return { lead: this.raft.lead, raftState: this.raft.state };
  }

  hasReady(): boolean {
    if (this.outstanding !== undefined) return false;
    const r = this.raft;
    const soft = this.softState();
    if (soft.lead !== this.previousSoftState.lead || soft.raftState !== this.previousSoftState.raftState) return true;
    const hard = r.hardState();
    if (!isEmptyHardState(hard) && !hardStateEqual(hard, this.previousHardState)) return true;
    if (r.log.unstable.snapshot !== undefined) return true;
    if (r.log.unstable.entries.length > 0 || r.log.hasNextCommittedEntries()) return true;
    return r.messages.length > 0 || r.messagesAfterPersist.length > 0 || r.readStates.length > 0;
  }

  /** The work to do now; call advance() when it is done. Calling ready() again first is a bug. */
  ready(): Ready {
    assert(this.outstanding === undefined, "raw node: ready() called before advance()");
    const r = this.raft;
    const soft = this.softState();
    const hard = r.hardState();
    const entries = [...r.log.unstableEntries()];
    const ready: Ready = {
      readStates: r.readStates,
      entries,
      committedEntries: r.log.nextCommittedEntries(),
      messages: r.messages,
      messagesAfterPersist: r.messagesAfterPersist.filter((m) => m.to !== r.id),
      mustSync: false,
    };
    if (soft.lead !== this.previousSoftState.lead || soft.raftState !== this.previousSoftState.raftState) ready.softState = soft;
    if (!hardStateEqual(hard, this.previousHardState)) ready.hardState = hard;
    if (r.log.unstable.snapshot !== undefined) ready.snapshot = r.log.unstable.snapshot;
    ready.mustSync =
      entries.length > 0 || (ready.hardState !== undefined && (hard.term !== this.previousHardState.term || hard.vote !== this.previousHardState.vote));
    const lastCommitted = ready.committedEntries[ready.committedEntries.length - 1];
    if (lastCommitted !== undefined) r.log.applying = lastCommitted.index;
    const toSelf = r.messagesAfterPersist.filter((m) => m.to === r.id);
    r.messages = [];
    r.messagesAfterPersist = [];
    r.readStates = [];
    this.outstanding = { ready, toSelf };
    return ready;
  }

  /** Reports that the last Ready was persisted, sent and applied. */
  advance(): void {
    assert(this.outstanding !== undefined, "raw node: advance() without ready()");
    const { ready, toSelf } = this.outstanding;
    this.outstanding = undefined;
    const r = this.raft;
    if (ready.softState !== undefined) this.previousSoftState = ready.softState;
    if (ready.hardState !== undefined) this.previousHardState = ready.hardState;
    if (ready.snapshot !== undefined) r.log.stableSnapshotTo(ready.snapshot.metadata.index);
    const lastEntry = ready.entries[ready.entries.length - 1];
    if (lastEntry !== undefined) r.log.stableTo(lastEntry.index, lastEntry.term);
    let applied = ready.snapshot?.metadata.index ?? 0;
    const lastCommitted = ready.committedEntries[ready.committedEntries.length - 1];
    if (lastCommitted !== undefined) applied = lastCommitted.index;
    if (applied > r.log.applied) r.log.appliedTo(applied);
    r.reduceUncommittedSize(ready.committedEntries);
    for (const m of toSelf) r.step(m);
    this.acknowledgeOwnEntries(lastEntry);
    this.maybeLeaveJoint();
  }

  /** The leader counts its own log toward commit only once it is durable. */
  private acknowledgeOwnEntries(lastPersisted: Entry | undefined): void {
    const r = this.raft;
    if (lastPersisted === undefined || r.state !== StateType.Leader) return;
    if (!r.log.matchTerm(lastPersisted.index, lastPersisted.term)) return;
    r.step(message({ type: MessageType.MsgAppResp, from: r.id, to: r.id, term: r.term, index: lastPersisted.index }));
  }

  /** With an auto-leave joint configuration applied, the leader proposes leaving it. */
  private maybeLeaveJoint(): void {
    const r = this.raft;
    if (r.state !== StateType.Leader || !r.tracker.config.autoLeave || r.log.applied < r.pendingConfIndex) return;
    r.trace("initiating automatic transition out of joint configuration");
    this.proposeConfChange({ transition: 0, changes: [], context: new Uint8Array(0) });
  }

  status(): Status {
    const r = this.raft;
    const progress = new Map<NodeId, ProgressStatus>();
    if (r.state === StateType.Leader) {
      for (const [id, p] of r.tracker.progress) {
        progress.set(id, { match: p.match, next: p.next, state: p.state, isLearner: p.isLearner, recentActive: p.recentActive });
      }
    }
    return {
      id: r.id,
      hardState: r.hardState(),
      softState: this.softState(),
      applied: r.log.applied,
      leadTransferee: r.leadTransferee,
      confState: r.tracker.confState(),
      progress,
    };
  }
}

export { CampaignType };
