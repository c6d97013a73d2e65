/**
 * One simulated member: durable storage that survives crashes, a RawNode that
 * does not, a Ready being persisted (lost on a crash), and a state machine
 * whose state is a hash chain of the entries applied.
 */
import { RawNode } from "../raw-node.js";
import type { Ready } from "../raw-node.js";
import type { Config, TestingFaults } from "../config.js";
import type { ConfState, Entry, Message, NodeId, Snapshot } from "../messages.js";
import { EntryType, emptyConfState } from "../messages.js";
import { MemoryStorage } from "../storage.js";
import { SeededRandom } from "../random.js";
import { decodeConfChange, decodeConfChangeV2 } from "../codec.js";
import { RaftError } from "../errors.js";
import type { Checker, DurableLog } from "./checker.js";
import { chainHash } from "./checker.js";

export interface NodeOptions {
  electionTick: number;
  heartbeatTick: number;
  maxSizePerMessageBytes: number;
  maxInflightMessages: number;
  maxInflightBytes: number;
  maxUncommittedEntriesSizeBytes: number;
  preVote: boolean;
  checkQuorum: boolean;
  testingFaults: TestingFaults;
  logger?: (line: string) => void;
}

export interface AppliedRecord {
  index: number;
  data: Uint8Array;
}

const textDecoder = new TextDecoder();

export class SimNode {
  readonly storage = new MemoryStorage();
  node: RawNode | undefined;
  /** The Ready being persisted, and the time its write completes. */
  pending: { ready: Ready; persistAt: number } | undefined;
  appliedIndex = 0;
  appliedHash = 0;
  confState: ConfState = emptyConfState();
  readonly random: SeededRandom;

  constructor(readonly id: NodeId, random: SeededRandom, private readonly options: NodeOptions) {
    this.random = random;
  }

  get alive(): boolean {
    return this.node !== undefined;
  }

  private config(applied: number): Config {
    return {
      id: this.id,
      storage: this.storage,
      electionTick: this.options.electionTick,
      heartbeatTick: this.options.heartbeatTick,
      applied,
      maxSizePerMessageBytes: this.options.maxSizePerMessageBytes,
      maxInflightMessages: this.options.maxInflightMessages,
      maxInflightBytes: this.options.maxInflightBytes,
      maxUncommittedEntriesSizeBytes: this.options.maxUncommittedEntriesSizeBytes,
      preVote: this.options.preVote,
      checkQuorum: this.options.checkQuorum,
      random: this.random,
      logger: this.options.logger,
      testingFaults: this.options.testingFaults,
    };
  }

  start(bootstrapPeers: readonly NodeId[] | undefined, checker: Checker): void {
    this.node = new RawNode(this.config(0));
    if (bootstrapPeers === undefined) return;
    // Bootstrap state is written before the member starts serving, as a server writes it at creation.
    this.node.bootstrap(bootstrapPeers.map((id) => ({ id })));
    const ready = this.node.ready();
    this.persist(ready, checker);
    this.apply(ready, checker);
    this.node.advance();
  }

  /** Loses everything not durable: the RawNode, the Ready being written, the state machine. */
  crash(): void {
    this.node = undefined;
    this.pending = undefined;
  }

  /** Restarts from storage; the state machine is rebuilt from the snapshot and re-applied entries. */
  restart(): void {
    const snapshot = this.storage.snapshot();
    this.appliedIndex = snapshot.metadata.index;
    this.appliedHash = snapshot.metadata.index === 0 ? 0 : decodeSnapshotData(snapshot).hash;
    this.confState = snapshot.metadata.confState;
    this.node = new RawNode(this.config(snapshot.metadata.index));
  }

  /** Writes a Ready to durable storage (the moment of fsync). */
  persist(ready: Ready, checker: Checker): void {
    if (ready.snapshot !== undefined) this.storage.applySnapshot(ready.snapshot);
    if (ready.entries.length > 0) {
      this.storage.append(ready.entries);
      for (const entry of ready.entries) {
        let previousTerm: number | undefined;
        try {
          previousTerm = this.storage.term(entry.index - 1);
        } catch {
          previousTerm = undefined;
        }
        checker.observeAppended(entry, previousTerm);
      }
    }
    if (ready.hardState !== undefined) this.storage.setHardState(ready.hardState);
  }

  /** Applies the snapshot and committed entries of a persisted Ready; returns normal entries applied. */
  apply(ready: Ready, checker: Checker): AppliedRecord[] {
    const node = this.node!;
    if (ready.snapshot !== undefined) {
      const data = decodeSnapshotData(ready.snapshot);
      this.appliedIndex = ready.snapshot.metadata.index;
      this.appliedHash = data.hash;
      this.confState = ready.snapshot.metadata.confState;
      checker.observeApplied(this.id, this.appliedIndex, ready.snapshot.metadata.term, this.appliedHash);
    }
    const applied: AppliedRecord[] = [];
    for (const entry of ready.committedEntries) {
      if (entry.index <= this.appliedIndex) continue;
      if (entry.index !== this.appliedIndex + 1) throw new Error(`node ${this.id} applies ${entry.index} after ${this.appliedIndex}`);
      this.appliedHash = chainHash(this.appliedHash, entry);
      this.appliedIndex = entry.index;
      checker.observeApplied(this.id, entry.index, entry.term, this.appliedHash);
      this.applyEntry(node, entry, applied);
    }
    return applied;
  }

  private applyEntry(node: RawNode, entry: Entry, applied: AppliedRecord[]): void {
    if (entry.type === EntryType.EntryNormal) {
      if (entry.data.length > 0) applied.push({ index: entry.index, data: entry.data });
      return;
    }
    const change = entry.type === EntryType.EntryConfChange ? decodeConfChange(entry.data) : decodeConfChangeV2(entry.data);
    const result = node.applyConfChange(change);
    if (result instanceof RaftError) return;
    this.confState = result;
    // A member added after the latest snapshot could not install it (it is not in its
    // configuration), so the application snapshots whenever membership changes.
    this.compact(Number.MAX_SAFE_INTEGER);
  }

  /** Takes a snapshot of the applied state and compacts the log, keeping `keep` entries. */
  compact(keep: number): boolean {
    const snapshotIndex = this.storage.snapshot().metadata.index;
    if (this.appliedIndex <= snapshotIndex || this.appliedIndex > this.storage.lastIndex()) return false;
    const data = new TextEncoder().encode(JSON.stringify({ index: this.appliedIndex, hash: this.appliedHash }));
    this.storage.createSnapshot(this.appliedIndex, this.confState, data);
    const compactIndex = keep >= this.appliedIndex ? 0 : this.appliedIndex - keep;
    if (compactIndex > snapshotIndex && compactIndex >= this.storage.firstIndex()) this.storage.compact(compactIndex);
    return true;
  }

  /** The durable log, which is what survives a crash. */
  durableLog(): DurableLog {
    const storage = this.storage;
    return {
      holds(index: number, term: number): boolean {
        if (index < storage.firstIndex()) return true;
        if (index > storage.lastIndex()) return false;
        return storage.term(index) === term;
      },
      last(): { index: number; term: number } {
        const index = storage.lastIndex();
        return { index, term: storage.term(index) };
      },
    };
  }

  deliver(message: Message): void {
    this.node?.step(message);
  }
}

export function decodeSnapshotData(snapshot: Snapshot): { index: number; hash: number } {
  return JSON.parse(textDecoder.decode(snapshot.data)) as { index: number; hash: number };
}
