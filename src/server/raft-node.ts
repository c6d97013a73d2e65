import { randomBytes } from "node:crypto";
import {
  ErrProposalDropped,
  None,
  RawNode,
  StateType,
  type ConfChange,
  type Entry,
  type HardState,
  type Message,
  type RandomSource,
  type Ready,
  type Snapshot,
  type SoftState,
} from "../raft/index.js";
import type { PeerTransport } from "../transport/peer-transport.js";
import type { WalRecord } from "../wal/record.js";
import type { Wal } from "../wal/wal.js";
import * as errors from "./errors.js";
import { FollowerLatency } from "./follower-latency.js";
import type { ServerRaftStorage } from "./snapshot.js";
import { entryRecord, hardStateRecord, snapshotRecord } from "./wal-records.js";

export interface RaftNodeOptions {
  id: bigint;
  node: RawNode;
  storage: ServerRaftStorage;
  wal: Wal;
  transport: PeerTransport;
  heartbeatIntervalMs: number;
  /** How long a linearizable read waits for the leader's confirmation. */
  requestTimeoutMs: number;
  /** Applies committed entries in order (conf changes included); synchronous. */
  apply: (entries: Entry[]) => void;
  /** Replaces the state machine with a snapshot from the leader; resolves once it is durable. */
  installSnapshot: (snapshot: Snapshot) => Promise<void>;
  onLeaderChange: (leader: bigint, isLeader: boolean) => void;
  onFailure: (error: Error) => void;
}

interface ReadBatch {
  waiters: Array<{ resolve: (index: number) => void; reject: (error: Error) => void }>;
  timer: NodeJS.Timeout;
  /** Asks again with the same context, in case the request or its answer was lost. */
  resend: NodeJS.Timeout;
}

/** How often an unanswered ReadIndex request is sent again (etcd's readIndexRetryTime). */
const readIndexRetryMs = 500;

/**
 * Drives the Raft core for the server: ticks it on the heartbeat interval,
 * feeds it peer messages, and handles each Ready in the order raft requires:
 * send what may go before persisting, write entries and hard state to the WAL
 * in one durable write, send acknowledgements, apply, advance. Proposals that
 * arrive while a write is in flight join the next Ready, so one durable write
 * covers every request of a batch.
 *
 * Committed entries that were durable before a Ready are applied before its
 * write starts, so applying one batch overlaps persisting the next.
 */
export class RaftNode {
  readonly id: bigint;
  /** On the leader: heartbeat round trips to each follower. */
  readonly followerLatency = new FollowerLatency();
  private readonly node: RawNode;
  private readonly storage: ServerRaftStorage;
  private readonly wal: Wal;
  private readonly transport: PeerTransport;
  private readonly options: RaftNodeOptions;
  private readonly ticker: NodeJS.Timeout;
  private processing = false;
  private scheduled = false;
  private stopped = false;
  private failed = false;
  private lead: bigint = None;
  private state: StateType = StateType.Follower;
  private hardState: HardState;
  /** Index of the last entry known durable in this member's WAL. */
  private persistedIndex: number;
  /** Index of the last entry handed to the WAL (durable or being written). */
  writtenIndex: number;
  /** The last hard state handed to the WAL. */
  writtenHardState: HardState;
  private readWaiting: ReadBatch["waiters"] = [];
  private readonly readBatches = new Map<string, ReadBatch>();
  private readonly idle: Array<() => void> = [];

  constructor(options: RaftNodeOptions) {
    this.options = options;
    this.id = options.id;
    this.node = options.node;
    this.storage = options.storage;
    this.wal = options.wal;
    this.transport = options.transport;
    this.hardState = this.storage.hardStateSnapshot();
    this.persistedIndex = this.storage.lastIndex();
    this.writtenIndex = this.persistedIndex;
    this.writtenHardState = this.hardState;
    this.transport.onMessage((message) => this.step(message));
    this.transport.onUnreachable((peer) => {
      this.node.reportUnreachable(peer);
      this.schedule();
    });
    this.transport.onSnapshotStatus((peer, status) => {
      this.node.reportSnapshot(peer, status);
      this.schedule();
    });
    this.ticker = setInterval(() => {
      this.node.tick();
      this.schedule();
    }, options.heartbeatIntervalMs);
    this.ticker.unref();
  }

  get leaderId(): bigint {
    return this.lead;
  }

  get isLeader(): boolean {
    return this.state === StateType.Leader;
  }

  get term(): number {
    return this.node.raft.term;
  }

  get commitIndex(): number {
    return this.node.raft.log.committed;
  }

  get lastIndex(): number {
    return this.node.raft.log.lastIndex();
  }

  /** The raft core, for status, conf changes and leadership transfer; schedule() after acting on it. */
  get raw(): RawNode {
    return this.node;
  }

  /** Proposes data; throws ErrProposalDropped when there is no leader to take it. */
  propose(data: Uint8Array): void {
    const error = this.node.propose(data);
    if (error !== undefined) throw error;
    this.schedule();
  }

  /** Proposes a membership change; throws ErrProposalDropped when there is no leader to take it. */
  proposeConfChange(change: ConfChange): void {
    const error = this.node.proposeConfChange(change);
    if (error !== undefined) throw error;
    this.schedule();
  }

  /** Asks the leader (this member) to hand leadership to `transferee`. */
  transferLeader(transferee: bigint): void {
    this.node.transferLeader(transferee);
    this.schedule();
  }

  /** Starts an election now (a single voter elects itself at once). */
  campaign(): void {
    this.node.campaign();
    this.schedule();
  }

  /**
   * Resolves with an index that, once applied here, makes a read linearizable:
   * the leader's commit index, confirmed by a heartbeat round to a quorum.
   * Reads that arrive while one confirmation is in flight share the next.
   */
  readIndex(): Promise<number> {
    if (this.stopped) return Promise.reject(errors.ErrStopped);
    return new Promise((resolve, reject) => {
      this.readWaiting.push({ resolve, reject });
      if (this.readBatches.size === 0) this.sendReadIndex();
    });
  }

  private sendReadIndex(): void {
    if (this.readWaiting.length === 0) return;
    const waiters = this.readWaiting;
    this.readWaiting = [];
    const context = randomBytes(8);
    const key = context.toString("hex");
    const timer = setTimeout(() => this.finishRead(key, errors.ErrTimeout), this.options.requestTimeoutMs);
    const resend = setInterval(() => {
      if (this.stopped) return;
      this.node.readIndex(context);
      this.schedule();
    }, readIndexRetryMs);
    this.readBatches.set(key, { waiters, timer, resend });
    const error = this.node.readIndex(context);
    if (error !== undefined) this.finishRead(key, errors.ErrNoLeader);
    this.schedule();
  }

  private finishRead(key: string, outcome: number | Error): void {
    const batch = this.readBatches.get(key);
    if (batch === undefined) return;
    this.readBatches.delete(key);
    clearTimeout(batch.timer);
    clearInterval(batch.resend);
    for (const waiter of batch.waiters) {
      if (typeof outcome === "number") waiter.resolve(outcome);
      else waiter.reject(outcome);
    }
    if (this.readBatches.size === 0) this.sendReadIndex();
  }

  /** Steps a message from a peer. */
  step(message: Message): void {
    if (this.stopped) return;
    this.followerLatency.received(message);
    this.node.step(message);
    this.schedule();
  }

  /** Handles Readies soon, once the current call returns. */
  schedule(): void {
    if (this.scheduled || this.processing || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.processReadies();
    });
  }

  private async processReadies(): Promise<void> {
    if (this.processing || this.stopped || this.failed) return;
    this.processing = true;
    try {
      while (!this.stopped && this.node.hasReady()) await this.handle(this.node.ready());
    } catch (error) {
      this.failed = true;
      this.options.onFailure(error as Error);
    } finally {
      this.processing = false;
      for (const resolve of this.idle.splice(0)) resolve();
    }
  }

  private async handle(ready: Ready): Promise<void> {
    if (ready.softState !== undefined) this.changeSoftState(ready.softState);
    this.followerLatency.sent(ready.messages);
    this.transport.send(ready.messages);

    // The backend is the snapshot: it is replaced, and durable, before the WAL
    // marks that the log continues after it.
    if (ready.snapshot !== undefined) await this.options.installSnapshot(ready.snapshot);
    // Committed entries already in this member's WAL are applied now, while
    // this Ready's write runs; not those this Ready rewrites (a new leader
    // replacing an uncommitted tail): applied entries are always in the WAL.
    const rewrittenFrom = ready.entries[0]?.index ?? Infinity;
    const durable =
      ready.snapshot !== undefined ? [] : ready.committedEntries.filter((entry) => entry.index <= this.persistedIndex && entry.index < rewrittenFrom);
    if (durable.length > 0) this.options.apply(durable);

    const records: WalRecord[] = [];
    if (ready.hardState !== undefined) this.hardState = ready.hardState;
    if (ready.snapshot !== undefined) records.push(snapshotRecord(ready.snapshot.metadata));
    for (const entry of ready.entries) records.push(entryRecord(entry));
    // After the entries, as etcd orders them: a write torn at a record
    // boundary may lose the hard state, never keep a commit beyond the entries.
    // A change of commit alone need not be durable: it is learned again from
    // the leader, or from the backend's applied index, after a restart. It
    // rides along with the next write that must be durable.
    if (ready.mustSync || ready.snapshot !== undefined) records.push(hardStateRecord(this.hardState));
    const lastEntry = ready.entries[ready.entries.length - 1];
    if (lastEntry !== undefined) this.writtenIndex = lastEntry.index;
    if (records.length > 0) {
      // Set in the same synchronous step as the append: a WAL rotation starting
      // a segment after it repeats this hard state (see LogCompactor).
      this.writtenHardState = this.hardState;
      await this.wal.append(records);
    }
    if (this.stopped) return;

    if (ready.snapshot !== undefined) this.storage.applySnapshot({ data: new Uint8Array(0), metadata: ready.snapshot.metadata });
    if (ready.hardState !== undefined) this.storage.setHardState(ready.hardState);
    this.storage.append(ready.entries);
    this.persistedIndex = this.storage.lastIndex();
    this.transport.send(ready.messagesAfterPersist);

    const rest = ready.committedEntries.slice(durable.length);
    if (rest.length > 0) this.options.apply(rest);
    for (const state of ready.readStates) this.finishRead(Buffer.from(state.requestContext).toString("hex"), state.index);
    this.node.advance();
  }

  private changeSoftState(soft: SoftState): void {
    const leaderChanged = soft.lead !== this.lead;
    const wasLeader = this.state === StateType.Leader;
    this.lead = soft.lead;
    this.state = soft.raftState;
    if (leaderChanged) {
      // Reads waiting on the old leader's confirmation will never get it.
      for (const key of [...this.readBatches.keys()]) this.finishRead(key, errors.ErrLeaderChanged);
    }
    if (leaderChanged || wasLeader !== this.isLeader) this.options.onLeaderChange(this.lead, this.isLeader);
  }

  /** Resolves once no Ready is being handled. */
  private whenIdle(): Promise<void> {
    if (!this.processing) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  /** Stops ticking and handling Readies; the WAL stays open for the caller to close. */
  async stop(): Promise<void> {
    clearInterval(this.ticker);
    // No new Ready is taken; the one being written finishes first.
    this.stopped = true;
    await this.whenIdle();
    for (const key of [...this.readBatches.keys()]) this.finishRead(key, errors.ErrStopped);
    for (const waiter of this.readWaiting.splice(0)) waiter.reject(errors.ErrStopped);
    await this.transport.stop();
  }
}

export { ErrProposalDropped };
export type { RandomSource };
