/**
 * Majority arithmetic. A MajorityConfig is a set of voters; a JointConfig is an
 * incoming and an optional outgoing majority config, both of which must agree.
 */
import type { NodeId } from "./messages.js";

export const VoteResult = { Pending: "pending", Lost: "lost", Won: "won" } as const;
export type VoteResult = (typeof VoteResult)[keyof typeof VoteResult];

/** The largest index that a majority of `voters` has acknowledged; Infinity for an empty config. */
export function majorityCommittedIndex(voters: ReadonlySet<NodeId>, matchOf: (id: NodeId) => number | undefined): number {
  if (voters.size === 0) return Number.POSITIVE_INFINITY;
  const matches: number[] = [];
  for (const id of voters) matches.push(matchOf(id) ?? 0);
  matches.sort((a, b) => b - a);
  return matches[Math.floor(voters.size / 2)]!;
}

/** Outcome of a vote given the votes so far (true = granted); an empty config wins. */
export function majorityVoteResult(voters: ReadonlySet<NodeId>, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  if (voters.size === 0) return VoteResult.Won;
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const vote = votes.get(id);
    if (vote === undefined) missing++;
    else if (vote) granted++;
  }
  const quorum = Math.floor(voters.size / 2) + 1;
  if (granted >= quorum) return VoteResult.Won;
  if (granted + missing >= quorum) return VoteResult.Pending;
  return VoteResult.Lost;
}

export interface JointConfig {
  incoming: Set<NodeId>;
  /** Empty unless in a joint configuration. */
  outgoing: Set<NodeId>;
}

export function jointCommittedIndex(config: JointConfig, matchOf: (id: NodeId) => number | undefined): number {
  const incoming = majorityCommittedIndex(config.incoming, matchOf);
  const outgoing = majorityCommittedIndex(config.outgoing, matchOf);
  const index = Math.min(incoming, outgoing);
  return Number.isFinite(index) ? index : 0;
}

export function jointVoteResult(config: JointConfig, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  const incoming = majorityVoteResult(config.incoming, votes);
  const outgoing = majorityVoteResult(config.outgoing, votes);
  if (incoming === outgoing) return incoming;
  if (incoming === VoteResult.Lost || outgoing === VoteResult.Lost) return VoteResult.Lost;
  return VoteResult.Pending;
}

export function jointVoters(config: JointConfig): Set<NodeId> {
  const all = new Set(config.incoming);
  for (const id of config.outgoing) all.add(id);
  return all;
}
