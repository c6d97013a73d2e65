/**
 * The leader's (and candidate's) view of the group: the membership
 * configuration, one Progress per member, and the votes of an election.
 */
import type { ConfState, NodeId } from "./messages.js";
import { Progress } from "./progress.js";
import type { JointConfig, VoteResult } from "./quorum.js";
import { jointCommittedIndex, jointVoteResult, jointVoters } from "./quorum.js";

export interface TrackerConfig {
  voters: JointConfig;
  learners: Set<NodeId>;
  /** Voters of the outgoing config that become learners when the joint config is left. */
  learnersNext: Set<NodeId>;
  autoLeave: boolean;
}

export function emptyTrackerConfig(): TrackerConfig {
  return { voters: { incoming: new Set(), outgoing: new Set() }, learners: new Set(), learnersNext: new Set(), autoLeave: false };
}

export function cloneTrackerConfig(config: TrackerConfig): TrackerConfig {
  return {
    voters: { incoming: new Set(config.voters.incoming), outgoing: new Set(config.voters.outgoing) },
    learners: new Set(config.learners),
    learnersNext: new Set(config.learnersNext),
    autoLeave: config.autoLeave,
  };
}

const byId = (a: NodeId, b: NodeId): number => (a < b ? -1 : a > b ? 1 : 0);

export function confStateOf(config: TrackerConfig): ConfState {
  return {
    voters: [...config.voters.incoming].sort(byId),
    learners: [...config.learners].sort(byId),
    votersOutgoing: [...config.voters.outgoing].sort(byId),
    learnersNext: [...config.learnersNext].sort(byId),
    autoLeave: config.autoLeave,
  };
}

export class ProgressTracker {
  config: TrackerConfig = emptyTrackerConfig();
  progress = new Map<NodeId, Progress>();
  votes = new Map<NodeId, boolean>();

  constructor(readonly maxInflightMessages: number, readonly maxInflightBytes: number) {}

  confState(): ConfState {
    return confStateOf(this.config);
  }

  isSingleton(): boolean {
    return this.config.voters.incoming.size === 1 && this.config.voters.outgoing.size === 0;
  }

  isJoint(): boolean {
    return this.config.voters.outgoing.size > 0;
  }

  voterIds(): Set<NodeId> {
    return jointVoters(this.config.voters);
  }

  isVoter(id: NodeId): boolean {
    return this.config.voters.incoming.has(id) || this.config.voters.outgoing.has(id);
  }

  /** Ids of every member (voters and learners), sorted, so that iteration is deterministic. */
  memberIds(): NodeId[] {
    return [...this.progress.keys()].sort(byId);
  }

  /** The largest index a quorum of voters has acknowledged. */
  committed(): number {
    return jointCommittedIndex(this.config.voters, (id) => this.progress.get(id)?.match);
  }

  /** Whether a quorum of voters was recently active (the leader counts itself). */
  quorumActive(selfId: NodeId): boolean {
    const votes = new Map<NodeId, boolean>();
    for (const [id, progress] of this.progress) {
      if (progress.isLearner) continue;
      votes.set(id, id === selfId || progress.recentActive);
    }
    return jointVoteResult(this.config.voters, votes) === "won";
  }

  resetVotes(): void {
    this.votes = new Map();
  }

  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const [id, progress] of this.progress) {
      if (progress.isLearner) continue;
      const vote = this.votes.get(id);
      if (vote === undefined) continue;
      if (vote) granted++;
      else rejected++;
    }
    return { granted, rejected, result: jointVoteResult(this.config.voters, this.votes) };
  }

  newProgress(next: number, isLearner: boolean): Progress {
    return new Progress(next, this.maxInflightMessages, this.maxInflightBytes, isLearner);
  }
}
