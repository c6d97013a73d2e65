/**
 * The raft state machine: roles, terms, votes, and the dispatch of messages.
 * A role change swaps the step and tick functions; the per-role rules live in
 * leader.ts and follower.ts, replication helpers in replication.ts.
 *
 * Pure and synchronous: inputs are ticks and messages, outputs are appended to
 * `messages` / `messagesAfterPersist` and to the log, and collected by RawNode.
 */
import type { ResolvedConfig, Config } from "./config.js";
import { resolveConfig } from "./config.js";
import type { Entry, Message, NodeId, HardState } from "./messages.js";
import {
  EntryType,
  MessageType,
  None,
  entryPayloadBytes,
  message,
  mustSendAfterPersist,
  isResponseMessage,
} from "./messages.js";
import { RaftLog } from "./log.js";
import { ProgressTracker } from "./tracker.js";
import { ReadOnly } from "./read-only.js";
import type { ReadState } from "./read-only.js";
import { restoreConfState } from "./confchange.js";
import type { RaftError } from "./errors.js";
import { assert } from "./errors.js";
import { stepLeader } from "./leader.js";
import { stepCandidate, stepFollower } from "./follower.js";
import { switchToConfig } from "./membership.js";
import { acceptHigherTerm, answerLowerTerm, handleVoteRequest, hup } from "./election.js";

export const StateType = {
  Follower: "follower",
  Candidate: "candidate",
  Leader: "leader",
  PreCandidate: "pre-candidate",
} as const;
export type StateType = (typeof StateType)[keyof typeof StateType];

export const CampaignType = {
  PreElection: "CampaignPreElection",
  Election: "CampaignElection",
  Transfer: "CampaignTransfer",
} as const;
export type CampaignType = (typeof CampaignType)[keyof typeof CampaignType];

/** The context of a MsgVote sent on leadership transfer: it overrides a voter's leader lease. */
export const campaignTransferContext = new TextEncoder().encode(CampaignType.Transfer);

export function isTransferContext(context: Uint8Array): boolean {
  if (context.length !== campaignTransferContext.length) return false;
  return context.every((byte, i) => byte === campaignTransferContext[i]);
}

export type StepFunction = (r: Raft, m: Message) => RaftError | undefined;

export class Raft {
  readonly id: NodeId;
  readonly config: ResolvedConfig;
  term = 0;
  vote: NodeId = None;
  readStates: ReadState[] = [];
  readonly log: RaftLog;
  tracker: ProgressTracker;
  state: StateType = StateType.Follower;
  isLearner = false;
  /** Messages that may be sent at once (before this node's pending writes are durable). */
  messages: Message[] = [];
  /** Messages that may be sent only after the current Ready is persisted; those to self are stepped on advance. */
  messagesAfterPersist: Message[] = [];
  lead: NodeId = None;
  leadTransferee: NodeId = None;
  /** Index of the last conf change proposed; a new one waits until it is applied. */
  pendingConfIndex = 0;
  /** Payload bytes of uncommitted entries appended by this leader. */
  uncommittedSize = 0;
  readOnly = new ReadOnly();
  /** Reads that arrived before the leader committed an entry of its term. */
  pendingReadIndexMessages: Message[] = [];
  electionElapsed = 0;
  heartbeatElapsed = 0;
  randomizedElectionTimeout = 0;
  tickFunction: (r: Raft) => void = tickElection;
  stepFunction: StepFunction = stepFollower;

  constructor(config: Config) {
    this.config = resolveConfig(config);
    this.id = this.config.id;
    this.log = new RaftLog(this.config.storage, this.config.maxCommittedSizePerReadyBytes);
    this.tracker = new ProgressTracker(this.config.maxInflightMessages, this.config.maxInflightBytes);
    const { hardState, confState } = this.config.storage.initialState();
    const restored = restoreConfState(this.tracker, confState, this.log.lastIndex());
    switchToConfig(this, restored.config, restored.progress);
    if (hardState.term !== 0 || hardState.vote !== None || hardState.commit !== 0) this.loadState(hardState);
    if (this.config.applied > 0) this.log.appliedTo(this.config.applied);
    this.becomeFollower(this.term, None);
  }

  trace(line: string): void {
    this.config.logger?.(`${this.id} [term ${this.term} ${this.state}] ${line}`);
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  private loadState(state: HardState): void {
    assert(
      state.commit >= this.log.committed && state.commit <= this.log.lastIndex(),
      `raft: ${this.id} state.commit ${state.commit} is out of range [${this.log.committed}, ${this.log.lastIndex()}]`,
    );
    this.log.committed = state.commit;
    this.term = state.term;
    this.vote = state.vote;
  }

  // ---- sending ----

  /** Queues a message; stamps from and (for non-vote, non-local messages) the term. */
  send(m: Message): void {
    // A forwarded message (a follower's MsgTransferLeader names the transferee) keeps its sender.
    if (m.from === None) m.from = this.id;
    const isVote = m.type === MessageType.MsgVote || m.type === MessageType.MsgVoteResp || m.type === MessageType.MsgPreVote || m.type === MessageType.MsgPreVoteResp;
    if (isVote) {
      assert(m.term !== 0, `raft: term should be set when sending ${MessageType[m.type]}`);
    } else {
      assert(m.term === 0, `raft: term should not be set when sending ${MessageType[m.type]} (was ${m.term})`);
      // Proposals and read requests forwarded to the leader travel as local messages (term 0).
      if (m.type !== MessageType.MsgProp && m.type !== MessageType.MsgReadIndex) m.term = this.term;
    }
    if (m.to === this.id) {
      assert(isResponseMessage(m.type), `raft: ${MessageType[m.type]} addressed to self`);
      this.messagesAfterPersist.push(m);
    } else if (mustSendAfterPersist(m.type)) {
      this.messagesAfterPersist.push(m);
    } else {
      this.messages.push(m);
    }
  }

  // ---- roles ----

  reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = None;
    }
    this.lead = None;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.tracker.resetVotes();
    const lastIndex = this.log.lastIndex();
    const stableLastIndex = this.log.unstable.entries.length > 0 ? this.log.unstable.offset - 1 : lastIndex;
    for (const [id, old] of this.tracker.progress) {
      const progress = this.tracker.newProgress(lastIndex + 1, old.isLearner);
      if (id === this.id) progress.match = stableLastIndex;
      this.tracker.progress.set(id, progress);
    }
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.readOnly = new ReadOnly();
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.stepFunction = stepFollower;
    this.reset(term);
    this.tickFunction = tickElection;
    this.lead = lead;
    this.state = StateType.Follower;
    this.trace(`became follower at term ${this.term}${lead === None ? "" : ` with leader ${lead}`}`);
  }

  becomeCandidate(): void {
    assert(this.state !== StateType.Leader, "raft: invalid transition [leader -> candidate]");
    this.stepFunction = stepCandidate;
    this.reset(this.term + 1);
    this.tickFunction = tickElection;
    this.vote = this.id;
    this.state = StateType.Candidate;
    this.trace(`became candidate at term ${this.term}`);
  }

  becomePreCandidate(): void {
    assert(this.state !== StateType.Leader, "raft: invalid transition [leader -> pre-candidate]");
    // Pre-vote changes neither the term nor the vote.
    this.stepFunction = stepCandidate;
    this.tracker.resetVotes();
    this.tickFunction = tickElection;
    this.lead = None;
    this.state = StateType.PreCandidate;
    this.trace(`became pre-candidate at term ${this.term}`);
  }

  becomeLeader(): void {
    assert(this.state !== StateType.Follower, "raft: invalid transition [follower -> leader]");
    this.stepFunction = stepLeader;
    this.reset(this.term);
    this.tickFunction = tickHeartbeat;
    this.lead = this.id;
    this.state = StateType.Leader;
    // The leader's own progress is in replicate state; reset() set its match to the durable
    // last index, and it acknowledges newer entries itself once they are persisted.
    const self = this.tracker.progress.get(this.id);
    if (self !== undefined) {
      const match = self.match;
      self.becomeReplicate();
      self.match = match;
      self.next = this.log.lastIndex() + 1;
    }
    // Conf changes in the uncommitted tail may be pending; wait for them to be applied.
    this.pendingConfIndex = this.log.lastIndex();
    const appended = this.appendEntries([{ term: 0, index: 0, type: EntryType.EntryNormal, data: new Uint8Array(0) }]);
    assert(appended, "raft: empty entry was dropped");
    this.trace(`became leader at term ${this.term}`);
  }

  /** Whether this node may campaign: a voter with no snapshot waiting to be applied. */
  promotable(): boolean {
    const progress = this.tracker.progress.get(this.id);
    return progress !== undefined && !progress.isLearner && this.log.unstable.snapshot === undefined;
  }

  // ---- the entry point ----

  step(m: Message): RaftError | undefined {
    if (m.term !== 0 && m.term > this.term) {
      if (!acceptHigherTerm(this, m)) return undefined;
    } else if (m.term !== 0 && m.term < this.term) {
      answerLowerTerm(this, m);
      return undefined;
    }
    switch (m.type) {
      case MessageType.MsgHup:
        hup(this, this.config.preVote ? CampaignType.PreElection : CampaignType.Election);
        return undefined;
      case MessageType.MsgVote:
      case MessageType.MsgPreVote:
        handleVoteRequest(this, m);
        return undefined;
      default:
        return this.stepFunction(this, m);
    }
  }

  tick(): void {
    this.tickFunction(this);
  }

  // ---- shared helpers ----

  resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.config.electionTick + this.config.random.nextInt(this.config.electionTick);
  }

  pastElectionTimeout(): boolean {
    return this.electionElapsed >= this.randomizedElectionTimeout;
  }

  abortLeaderTransfer(): void {
    this.leadTransferee = None;
  }

  committedEntryInCurrentTerm(): boolean {
    return this.log.termOrZero(this.log.committed) === this.term;
  }

  /** Appends entries to the leader's log; false if the uncommitted-size limit drops them. */
  appendEntries(entries: Entry[]): boolean {
    const lastIndex = this.log.lastIndex();
    const stamped = entries.map((entry, i) => ({ ...entry, term: this.term, index: lastIndex + 1 + i }));
    if (!this.increaseUncommittedSize(stamped)) {
      this.trace("appending new entries would exceed the uncommitted entry size limit; dropping proposal");
      return false;
    }
    this.log.append(stamped);
    return true;
  }

  private increaseUncommittedSize(entries: Entry[]): boolean {
    let size = 0;
    for (const entry of entries) size += entryPayloadBytes(entry);
    const max = this.config.maxUncommittedEntriesSizeBytes;
    // An empty proposal, or the first one over an empty backlog, is always accepted.
    if (max > 0 && this.uncommittedSize > 0 && size > 0 && this.uncommittedSize + size > max) return false;
    this.uncommittedSize += size;
    return true;
  }

  reduceUncommittedSize(entries: readonly Entry[]): void {
    if (this.state !== StateType.Leader) return;
    let size = 0;
    for (const entry of entries) size += entryPayloadBytes(entry);
    this.uncommittedSize = size > this.uncommittedSize ? 0 : this.uncommittedSize - size;
  }

  /** Commits what a quorum has acknowledged; only an entry of the current term commits by counting. */
  maybeCommit(): boolean {
    const index = this.tracker.committed();
    if (this.config.testingFaults.commitEntriesOfEarlierTerms === true) {
      if (index > this.log.committed && index <= this.log.lastIndex()) {
        this.log.commitTo(index);
        return true;
      }
      return false;
    }
    return this.log.maybeCommit(index, this.term);
  }
}

export function tickElection(r: Raft): void {
  r.electionElapsed++;
  if (r.promotable() && r.pastElectionTimeout()) {
    r.electionElapsed = 0;
    r.step(message({ type: MessageType.MsgHup, from: r.id }));
  }
}

export function tickHeartbeat(r: Raft): void {
  r.heartbeatElapsed++;
  r.electionElapsed++;
  if (r.electionElapsed >= r.config.electionTick) {
    r.electionElapsed = 0;
    if (r.config.checkQuorum) r.step(message({ type: MessageType.MsgCheckQuorum, from: r.id }));
    // A leader no longer a voter has had an election timeout to hand over; now it steps down.
    if (r.state === StateType.Leader && !r.tracker.isVoter(r.id)) r.becomeFollower(r.term, None);
    // A transfer that did not finish within an election timeout is abandoned.
    if (r.state === StateType.Leader && r.leadTransferee !== None) r.abortLeaderTransfer();
  }
  if (r.state !== StateType.Leader) return;
  if (r.heartbeatElapsed >= r.config.heartbeatTick) {
    r.heartbeatElapsed = 0;
    r.step(message({ type: MessageType.MsgBeat, from: r.id }));
  }
}
