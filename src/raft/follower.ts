/**
 * The rules of followers and (pre-)candidates: forwarding proposals and reads
 * to the leader, accepting appends, heartbeats and snapshots, and counting votes.
 */
import type { Raft } from "./raft.js";
import { CampaignType, StateType } from "./raft.js";
import type { Message } from "./messages.js";
import { MessageType, None, message } from "./messages.js";
import type { RaftError } from "./errors.js";
import { ErrProposalDropped } from "./errors.js";
import { restoreSnapshot } from "./membership.js";
import { afterVote, hup, poll } from "./election.js";

export function stepFollower(r: Raft, m: Message): RaftError | undefined {
  switch (m.type) {
    case MessageType.MsgProp:
      if (r.lead === None) {
        r.trace("no leader; dropping proposal");
        return ErrProposalDropped;
      }
      if (r.config.disableProposalForwarding) return ErrProposalDropped;
      r.send({ ...m, to: r.lead, term: 0 });
      return undefined;
    case MessageType.MsgApp:
      r.electionElapsed = 0;
      r.lead = m.from;
      handleAppendEntries(r, m);
      return undefined;
    case MessageType.MsgHeartbeat:
      r.electionElapsed = 0;
      r.lead = m.from;
      handleHeartbeat(r, m);
      return undefined;
    case MessageType.MsgSnap:
      r.electionElapsed = 0;
      r.lead = m.from;
      handleSnapshot(r, m);
      return undefined;
    case MessageType.MsgTransferLeader:
    case MessageType.MsgReadIndex:
      if (r.lead === None) {
        r.trace(`no leader; dropping ${MessageType[m.type]}`);
        return m.type === MessageType.MsgReadIndex ? ErrProposalDropped : undefined;
      }
      r.send({ ...m, to: r.lead, term: 0 });
      return undefined;
    case MessageType.MsgTimeoutNow:
      r.trace(`received MsgTimeoutNow from ${m.from}; starting election`);
      // A leadership transfer never uses pre-vote.
      hup(r, CampaignType.Transfer);
      return undefined;
    case MessageType.MsgReadIndexResp:
      if (m.entries.length !== 1) return undefined;
      r.readStates.push({ index: m.index, requestContext: m.entries[0]!.data });
      return undefined;
  }
  return undefined;
}

export function stepCandidate(r: Raft, m: Message): RaftError | undefined {
  const myVoteResponse = r.state === StateType.PreCandidate ? MessageType.MsgPreVoteResp : MessageType.MsgVoteResp;
  switch (m.type) {
    case MessageType.MsgProp:
      return ErrProposalDropped;
    case MessageType.MsgReadIndex:
      return ErrProposalDropped;
    case MessageType.MsgApp:
      r.becomeFollower(m.term, m.from);
      handleAppendEntries(r, m);
      return undefined;
    case MessageType.MsgHeartbeat:
      r.becomeFollower(m.term, m.from);
      handleHeartbeat(r, m);
      return undefined;
    case MessageType.MsgSnap:
      r.becomeFollower(m.term, m.from);
      handleSnapshot(r, m);
      return undefined;
    case myVoteResponse:
      afterVote(r, poll(r, m.from, !m.reject));
      return undefined;
  }
  return undefined;
}

function handleAppendEntries(r: Raft, m: Message): void {
  if (m.index < r.log.committed) {
    r.send(message({ type: MessageType.MsgAppResp, to: m.from, index: r.log.committed }));
    return;
  }
  const lastNewIndex = r.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
  if (lastNewIndex !== undefined) {
    r.send(message({ type: MessageType.MsgAppResp, to: m.from, index: lastNewIndex }));
    return;
  }
  // Reject, with a hint: the largest index whose term is at most m.logTerm, so that
  // the leader can skip a whole term of mismatching entries at once.
  const hint = r.log.findConflictByTerm(Math.min(m.index, r.log.lastIndex()), m.logTerm);
  r.trace(`rejected MsgApp [logterm: ${m.logTerm}, index: ${m.index}] from ${m.from}; hint ${hint.index}@${hint.term}`);
  r.send(message({ type: MessageType.MsgAppResp, to: m.from, index: m.index, reject: true, rejectHint: hint.index, logTerm: hint.term }));
}

function handleHeartbeat(r: Raft, m: Message): void {
  r.log.commitTo(m.commit);
  r.send(message({ type: MessageType.MsgHeartbeatResp, to: m.from, context: m.context }));
}

function handleSnapshot(r: Raft, m: Message): void {
  const snapshot = m.snapshot!;
  if (restoreSnapshot(r, snapshot)) {
    r.trace(`restored snapshot ${snapshot.metadata.index}@${snapshot.metadata.term}`);
    r.send(message({ type: MessageType.MsgAppResp, to: m.from, index: r.log.lastIndex() }));
  } else {
    r.trace(`ignored snapshot ${snapshot.metadata.index}@${snapshot.metadata.term}`);
    r.send(message({ type: MessageType.MsgAppResp, to: m.from, index: r.log.committed }));
  }
}
