/**
 * Elections: campaigning (with pre-vote), counting votes, granting or refusing
 * votes, and how a message from another term is treated (adopt a higher term
 * unless a live leader's lease holds; tell a node of an older term about ours).
 */
import type { Raft } from "./raft.js";
import { CampaignType, StateType, campaignTransferContext, isTransferContext } from "./raft.js";
import type { Message, NodeId } from "./messages.js";
import { EntryType, MessageType, None, message, voteResponseType } from "./messages.js";
import { VoteResult } from "./quorum.js";
import { bcastAppend } from "./replication.js";


/** Starts an election if this node may: a voter, not leading, with no committed conf change left to apply. */
export function hup(r: Raft, campaignType: CampaignType): void {
  if (r.state === StateType.Leader) return;
  if (!r.promotable()) {
    r.trace("is unpromotable and can not campaign");
    return;
  }
  if (hasUnappliedConfChanges(r)) {
    r.trace("cannot campaign: pending configuration changes to apply");
    return;
  }
  campaign(r, campaignType);
}

function hasUnappliedConfChanges(r: Raft): boolean {
  if (r.log.applied >= r.log.committed) return false;
  const entries = r.log.slice(Math.max(r.log.applied + 1, r.log.firstIndex()), r.log.committed + 1, Number.MAX_SAFE_INTEGER);
  return entries.some((entry) => entry.type !== EntryType.EntryNormal);
}

/** Becomes (pre-)candidate and asks every voter; a real vote for oneself counts once durable. */
export function campaign(r: Raft, campaignType: CampaignType): void {
  if (!r.promotable()) return;
  let term: number;
  let voteType: MessageType;
  if (campaignType === CampaignType.PreElection) {
    r.becomePreCandidate();
    voteType = MessageType.MsgPreVote;
    term = r.term + 1;
  } else {
    r.becomeCandidate();
    voteType = MessageType.MsgVote;
    term = r.term;
  }
  const lastIndex = r.log.lastIndex();
  const lastTerm = r.log.lastTerm();
  const context = campaignType === CampaignType.Transfer ? campaignTransferContext : new Uint8Array(0);
  for (const id of [...r.tracker.voterIds()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (id === r.id) continue;
    r.send(message({ type: voteType, to: id, term, index: lastIndex, logTerm: lastTerm, context }));
  }
  if (voteType === MessageType.MsgPreVote) {
    // A pre-vote for oneself changes no durable state: count it at once.
    afterVote(r, poll(r, r.id, true));
  } else {
    // A vote for oneself counts once the term and vote are durable: RawNode steps it on advance().
    r.send(message({ type: MessageType.MsgVoteResp, to: r.id, term }));
  }
}

/** Records a vote and returns the election's outcome so far. */
export function poll(r: Raft, id: NodeId, granted: boolean): VoteResult {
  r.tracker.recordVote(id, granted);
  const { granted: grants, rejected, result } = r.tracker.tallyVotes();
  r.trace(`has received ${grants} votes and ${rejected} rejections`);
  return result;
}

/** Acts on an election's outcome: pre-vote won leads to the real election, a won election to leadership. */
export function afterVote(r: Raft, result: VoteResult): void {
  if (result === VoteResult.Won) {
    if (r.state === StateType.PreCandidate) {
      campaign(r, CampaignType.Election);
    } else {
      r.becomeLeader();
      bcastAppend(r);
    }
  } else if (result === VoteResult.Lost) {
    r.becomeFollower(r.term, None);
  }
}

/** A message from a higher term: maybe ignore it (leader lease), else adopt the term. Returns false to drop it. */
export function acceptHigherTerm(r: Raft, m: Message): boolean {
  if (m.type === MessageType.MsgVote || m.type === MessageType.MsgPreVote) {
    const force = isTransferContext(m.context);
    const inLease = r.config.checkQuorum && r.lead !== None && r.electionElapsed < r.config.electionTick;
    if (!force && inLease) {
      r.trace(`ignored ${MessageType[m.type]} from ${m.from} at term ${m.term}: lease is not expired`);
      return false;
    }
  }
  if (m.type === MessageType.MsgPreVote) return true; // never change the term for a pre-vote
  if (m.type === MessageType.MsgPreVoteResp && !m.reject) return true; // we become candidate on a quorum
  if (m.type === MessageType.MsgApp || m.type === MessageType.MsgHeartbeat || m.type === MessageType.MsgSnap) {
    r.becomeFollower(m.term, m.from);
  } else {
    r.becomeFollower(m.term, None);
  }
  return true;
}

/** A message from an older term is dropped, but its sender may need to learn our term. */
export function answerLowerTerm(r: Raft, m: Message): void {
  if ((r.config.checkQuorum || r.config.preVote) && (m.type === MessageType.MsgHeartbeat || m.type === MessageType.MsgApp)) {
    // A stale leader, or a node we out-termed while partitioned: tell it our term so that it steps down.
    r.send(message({ type: MessageType.MsgAppResp, to: m.from }));
  } else if (m.type === MessageType.MsgPreVote || m.type === MessageType.MsgVote) {
    // Tell a candidate of an older term about ours, as the paper's RequestVote reply does;
    // otherwise a voter that keeps out-terming it (say, one with a stale configuration that
    // never asks it) could keep every election from succeeding.
    r.send(message({ type: voteResponseType(m.type), to: m.from, term: r.term, reject: true }));
  }
}

/** Grants a (pre-)vote at most once per term, and only to a candidate whose log is at least as up to date. */
export function handleVoteRequest(r: Raft, m: Message): void {
  const faults = r.config.testingFaults;
  const canVote =
    faults.grantMultipleVotesPerTerm === true ||
    r.vote === m.from ||
    (r.vote === None && r.lead === None) ||
    (m.type === MessageType.MsgPreVote && m.term > r.term);
  const upToDate = faults.ignoreLogWhenVoting === true || r.log.isUpToDate(m.index, m.logTerm);
  if (canVote && upToDate) {
    r.trace(`cast ${MessageType[m.type]} for ${m.from} at term ${m.term}`);
    r.send(message({ type: voteResponseType(m.type), to: m.from, term: m.term }));
    if (m.type === MessageType.MsgVote) {
      r.electionElapsed = 0;
      r.vote = m.from;
    }
  } else {
    r.trace(`rejected ${MessageType[m.type]} from ${m.from} at term ${m.term}`);
    r.send(message({ type: voteResponseType(m.type), to: m.from, term: r.term, reject: true }));
  }
}
