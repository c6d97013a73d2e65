/**
 * The simulator's safety checks, fed by the simulation as things happen.
 * Each check throws a SafetyViolation naming the broken property.
 */
import type { Entry, NodeId } from "../messages.js";
import type { RaftLog } from "../log.js";
import { ErrCompacted, ErrUnavailable } from "../errors.js";

export class SafetyViolation extends Error {
  constructor(readonly property: string, detail: string) {
    super(`${property}: ${detail}`);
    this.name = "SafetyViolation";
  }
}

export function hashBytes(seed: number, bytes: Uint8Array): number {
  let hash = seed >>> 0 || 0x811c9dc5;
  for (const byte of bytes) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  return hash;
}

/** The hash of an applied-state chain after applying `entry`. */
export function chainHash(previous: number, entry: Entry): number {
  let hash = Math.imul(previous ^ entry.index, 0x01000193) >>> 0;
  hash = Math.imul(hash ^ entry.term, 0x01000193) >>> 0;
  return hashBytes(hash, entry.data);
}

/** A node's durable log, as the checker sees it. */
export interface DurableLog {
  /** Whether the durable log has (index, term), or has compacted past index. */
  holds(index: number, term: number): boolean;
  last(): { index: number; term: number };
}

export class Checker {
  /** term -> the node that led it. */
  private leaders = new Map<number, NodeId>();
  /** `${index}/${term}` -> data hash and term of the previous entry (log matching). */
  private appended = new Map<string, { dataHash: number; previousTerm: number | undefined }>();
  /** index -> state hash after applying it, and the entry's term (state machine safety). */
  private applied = new Map<number, { hash: number; term: number }>();
  maxAppliedIndex = 0;
  /** The largest commit index any node has ever held. */
  maxCommitted = 0;
  checks = 0;

  /** At most one leader per term. */
  observeLeader(term: number, id: NodeId): void {
    this.checks++;
    const known = this.leaders.get(term);
    if (known === undefined) this.leaders.set(term, id);
    else if (known !== id) throw new SafetyViolation("election safety", `term ${term} has two leaders: ${known} and ${id}`);
  }

  /** Log matching: an (index, term) pair names one entry, preceded by one history. */
  observeAppended(entry: Entry, previousTerm: number | undefined): void {
    this.checks++;
    const key = `${entry.index}/${entry.term}`;
    const dataHash = hashBytes(0, entry.data) ^ entry.type;
    const known = this.appended.get(key);
    if (known === undefined) {
      this.appended.set(key, { dataHash, previousTerm });
      return;
    }
    if (known.dataHash !== dataHash) throw new SafetyViolation("log matching", `two different entries at index ${entry.index} term ${entry.term}`);
    if (known.previousTerm !== undefined && previousTerm !== undefined && known.previousTerm !== previousTerm) {
      throw new SafetyViolation("log matching", `entry ${entry.index}@${entry.term} follows terms ${known.previousTerm} and ${previousTerm}`);
    }
  }

  /** State machine safety: no two nodes apply different entries (histories) at one index. */
  observeApplied(node: NodeId, index: number, term: number, hash: number): void {
    this.checks++;
    const known = this.applied.get(index);
    if (known === undefined) {
      this.applied.set(index, { hash, term });
      if (index > this.maxAppliedIndex) this.maxAppliedIndex = index;
      if (index > this.maxCommitted) this.maxCommitted = index;
      return;
    }
    if (known.hash !== hash) throw new SafetyViolation("state machine safety", `node ${node} applied a different history at index ${index}`);
  }

  observeCommitted(commit: number): void {
    if (commit > this.maxCommitted) this.maxCommitted = commit;
  }

  /** Leader completeness: a new leader's log holds every entry known to be committed (applied somewhere). */
  checkLeaderCompleteness(node: NodeId, term: number, log: RaftLog): void {
    this.checks++;
    if (log.lastIndex() < this.maxAppliedIndex) {
      throw new SafetyViolation("leader completeness", `leader ${node} of term ${term} ends at ${log.lastIndex()} but ${this.maxAppliedIndex} is committed`);
    }
    for (let index = Math.max(log.firstIndex(), 1); index <= this.maxAppliedIndex; index++) {
      const known = this.applied.get(index);
      if (known === undefined) continue;
      let found: number;
      try {
        found = log.term(index);
      } catch (error) {
        if (error === ErrCompacted || error === ErrUnavailable) continue;
        throw error;
      }
      if (found !== known.term) {
        throw new SafetyViolation("leader completeness", `leader ${node} of term ${term} has term ${found} at committed index ${index} (committed term ${known.term})`);
      }
    }
  }

  /** Linearizable reads: the read index covers every write committed before the read began. */
  checkRead(node: NodeId, readIndex: number, committedAtStart: number): void {
    this.checks++;
    if (readIndex < committedAtStart) {
      throw new SafetyViolation("linearizable read", `node ${node} got read index ${readIndex} but ${committedAtStart} was committed before the read began`);
    }
  }

  /**
   * Durability of a commit: when a leader commits (index, term), no node whose
   * durable log lacks that entry may be able to win an election, that is, to be
   * at least as up to date as a quorum of voters' durable logs. Raft's commit
   * rule guarantees this; counting replicas of an earlier term's entry (Figure 8)
   * breaks it long before an unlucky schedule overwrites the entry.
   */
  checkCommitDurable(
    leader: NodeId,
    index: number,
    term: number,
    config: { incoming: readonly NodeId[]; outgoing: readonly NodeId[] },
    logs: ReadonlyMap<NodeId, DurableLog>,
  ): void {
    this.checks++;
    for (const [candidate, log] of logs) {
      if (log.holds(index, term)) continue;
      const last = log.last();
      const wouldWin = (voters: readonly NodeId[]): boolean => {
        if (voters.length === 0) return true;
        let votes = 0;
        for (const voter of voters) {
          const voterLast = logs.get(voter)?.last() ?? { index: 0, term: 0 };
          if (last.term > voterLast.term || (last.term === voterLast.term && last.index >= voterLast.index)) votes++;
        }
        return votes >= Math.floor(voters.length / 2) + 1;
      };
      // In a joint configuration an election needs both majorities.
      if (wouldWin(config.incoming) && wouldWin(config.outgoing)) {
        throw new SafetyViolation(
          "commit durability",
          `leader ${leader} committed ${index}@${term}, but node ${candidate} (log ends ${last.index}@${last.term}) lacks it and could win an election`,
        );
      }
    }
  }

  appliedHashAt(index: number): number | undefined {
    return this.applied.get(index)?.hash;
  }
}
