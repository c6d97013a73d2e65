/**
 * The leader's rules: heartbeats, check-quorum, proposals (one pending conf
 * change at a time), ReadIndex, replication responses with flow control, and
 * leadership transfer.
 */
import type { Raft } from "./raft.js";
import type { Message, NodeId } from "./messages.js";
import { EntryType, MessageType, None, message } from "./messages.js";
import type { RaftError } from "./errors.js";
import { ErrProposalDropped, assert } from "./errors.js";
import { ProgressState } from "./progress.js";
import { ReadOnlyOption, limits } from "./config.js";
import { jointVoteResult } from "./quorum.js";
import { decodeConfChange, decodeConfChangeV2 } from "./codec.js";
import { bcastAppend, bcastHeartbeat, maybeSendAppend, sendAppend } from "./replication.js";

export function stepLeader(r: Raft, m: Message): RaftError | undefined {
  switch (m.type) {
    case MessageType.MsgBeat:
      bcastHeartbeat(r);
      return undefined;
    case MessageType.MsgCheckQuorum:
      if (!r.tracker.quorumActive(r.id)) {
        r.trace("stepped down to follower since quorum is not active");
        r.becomeFollower(r.term, None);
      }
      for (const [id, progress] of r.tracker.progress) if (id !== r.id) progress.recentActive = false;
      return undefined;
    case MessageType.MsgProp:
      return handleProposal(r, m);
    case MessageType.MsgReadIndex:
      return handleReadIndex(r, m);
  }
  const progress = r.tracker.progress.get(m.from);
  if (progress === undefined) return undefined;
  switch (m.type) {
    case MessageType.MsgAppResp:
      handleAppendResponse(r, m);
      break;
    case MessageType.MsgHeartbeatResp:
      handleHeartbeatResponse(r, m);
      break;
    case MessageType.MsgSnapStatus:
      if (progress.state !== ProgressState.Snapshot) break;
      if (m.reject) progress.pendingSnapshot = 0;
      progress.becomeProbe();
      // Wait for a MsgAppResp or heartbeat response before probing again.
      progress.messageAppFlowPaused = true;
      break;
    case MessageType.MsgUnreachable:
      if (progress.state === ProgressState.Replicate) progress.becomeProbe();
      break;
    case MessageType.MsgTransferLeader:
      handleTransferLeader(r, m.from);
      break;
  }
  return undefined;
}

function handleProposal(r: Raft, m: Message): RaftError | undefined {
  assert(m.entries.length > 0, `raft: ${r.id} stepped empty MsgProp`);
  if (!r.tracker.progress.has(r.id)) return ErrProposalDropped; // removed from the configuration
  if (r.leadTransferee !== None) {
    r.trace(`dropped proposal: transferring leadership to ${r.leadTransferee}`);
    return ErrProposalDropped;
  }
  const entries = m.entries.map((entry, i) => {
    if (entry.type === EntryType.EntryNormal) return entry;
    const refusal = confChangeRefusal(r, entry.type, entry.data);
    if (refusal !== undefined) {
      r.trace(`ignoring conf change: ${refusal}`);
      return { ...entry, type: EntryType.EntryNormal, data: new Uint8Array(0) };
    }
    r.pendingConfIndex = r.log.lastIndex() + i + 1;
    return entry;
  });
  if (!r.appendEntries(entries)) return ErrProposalDropped;
  bcastAppend(r);
  return undefined;
}

/** Why a proposed conf change must be replaced by an empty entry, or undefined if it may go ahead. */
function confChangeRefusal(r: Raft, type: EntryType, data: Uint8Array): string | undefined {
  const changeCount = type === EntryType.EntryConfChange ? 1 : decodeConfChangeV2(data).changes.length;
  if (type === EntryType.EntryConfChange) decodeConfChange(data); // reject garbage early: throws
  const alreadyPending = r.pendingConfIndex > r.log.applied;
  const alreadyJoint = r.tracker.isJoint();
  const wantsLeaveJoint = changeCount === 0;
  if (alreadyPending) return `possible unapplied conf change at index ${r.pendingConfIndex} (applied to ${r.log.applied})`;
  if (alreadyJoint && !wantsLeaveJoint) return "must transition out of joint config first";
  if (!alreadyJoint && wantsLeaveJoint) return "not in joint state; refusing empty conf change";
  return undefined;
}

function handleReadIndex(r: Raft, m: Message): RaftError | undefined {
  // A leader removed from the voters is handing over: it can no longer confirm reads.
  if (!r.tracker.isVoter(r.id)) return ErrProposalDropped;
  // Until the leader commits an entry of its term it does not know the true commit index.
  if (!r.committedEntryInCurrentTerm()) {
    if (r.pendingReadIndexMessages.length >= limits.maxPendingReadIndexMessages) return ErrProposalDropped;
    r.pendingReadIndexMessages.push(m);
    return undefined;
  }
  serveReadIndex(r, m);
  return undefined;
}

export function serveReadIndex(r: Raft, m: Message): void {
  // A single voter is its own quorum. (Even so it waits, like any leader, for an entry of its
  // term to commit: after a restart its persisted commit index may lag what was committed.)
  if (r.tracker.isSingleton() || r.config.readOnlyOption === ReadOnlyOption.LeaseBased) {
    respondToReadIndex(r, m, r.log.committed);
    return;
  }
  const context = m.entries[0]!.data;
  r.readOnly.addRequest(r.log.committed, m);
  r.readOnly.receiveAck(r.id, context);
  bcastHeartbeat(r, context);
}

function respondToReadIndex(r: Raft, request: Message, index: number): void {
  const context = request.entries[0]!.data;
  if (request.from === None || request.from === r.id) {
    r.readStates.push({ index, requestContext: context });
    return;
  }
  r.send(message({ type: MessageType.MsgReadIndexResp, to: request.from, index, entries: request.entries }));
}

export function releasePendingReadIndexMessages(r: Raft): void {
  if (r.pendingReadIndexMessages.length === 0 || !r.committedEntryInCurrentTerm()) return;
  const pending = r.pendingReadIndexMessages;
  r.pendingReadIndexMessages = [];
  for (const m of pending) serveReadIndex(r, m);
}

function handleAppendResponse(r: Raft, m: Message): void {
  const progress = r.tracker.progress.get(m.from)!;
  progress.recentActive = true;
  if (m.reject) {
    let nextProbeIndex = m.rejectHint;
    if (m.logTerm > 0) nextProbeIndex = r.log.findConflictByTerm(m.rejectHint, m.logTerm).index;
    if (progress.maybeDecreaseTo(m.index, nextProbeIndex)) {
      if (progress.state === ProgressState.Replicate) progress.becomeProbe();
      sendAppend(r, m.from);
    }
    return;
  }
  const wasPaused = progress.isPaused();
  if (!progress.maybeUpdate(m.index) && !(progress.match === m.index && progress.state === ProgressState.Probe)) return;
  if (progress.state === ProgressState.Probe) {
    progress.becomeReplicate();
  } else if (progress.state === ProgressState.Snapshot && progress.match + 1 >= r.log.firstIndex()) {
    // The follower caught up past the snapshot (or has the entries after it): resume replication.
    progress.becomeProbe();
    progress.becomeReplicate();
  } else if (progress.state === ProgressState.Replicate) {
    progress.inflights.freeLE(m.index);
  }
  if (r.maybeCommit()) {
    releasePendingReadIndexMessages(r);
    bcastAppend(r);
  } else if (m.from !== r.id && wasPaused) {
    sendAppend(r, m.from);
  }
  if (m.from !== r.id) {
    while (maybeSendAppend(r, m.from, false)) {
      // send as much as the flow control window allows
    }
  }
  if (m.from === r.leadTransferee && progress.match === r.log.lastIndex()) {
    r.trace(`sent MsgTimeoutNow to ${m.from} after it caught up`);
    sendTimeoutNow(r, m.from);
  }
}

function handleHeartbeatResponse(r: Raft, m: Message): void {
  const progress = r.tracker.progress.get(m.from)!;
  progress.recentActive = true;
  progress.messageAppFlowPaused = false;
  if (progress.match < r.log.lastIndex() || progress.state === ProgressState.Probe) sendAppend(r, m.from);
  if (r.config.readOnlyOption !== ReadOnlyOption.Safe || m.context.length === 0) return;
  const acks = r.readOnly.receiveAck(m.from, m.context);
  if (acks === undefined) return;
  const votes = new Map<NodeId, boolean>();
  for (const id of acks) votes.set(id, true);
  if (jointVoteResult(r.tracker.config.voters, votes) !== "won") return;
  for (const status of r.readOnly.advance(m.context)) respondToReadIndex(r, status.request, status.index);
}

/** Starts handing leadership to `transferee` (a voter): MsgTimeoutNow once it has the whole log. */
export function transferLeadership(r: Raft, transferee: NodeId): void {
  handleTransferLeader(r, transferee);
}

function handleTransferLeader(r: Raft, transferee: NodeId): void {
  const progress = r.tracker.progress.get(transferee)!;
  if (progress.isLearner) {
    r.trace(`ignored transferring leadership to learner ${transferee}`);
    return;
  }
  if (r.leadTransferee !== None) {
    if (r.leadTransferee === transferee) return;
    r.abortLeaderTransfer();
  }
  if (transferee === r.id) return;
  // The transfer must finish within one election timeout.
  r.electionElapsed = 0;
  r.leadTransferee = transferee;
  if (progress.match === r.log.lastIndex()) sendTimeoutNow(r, transferee);
  else sendAppend(r, transferee);
}

function sendTimeoutNow(r: Raft, to: NodeId): void {
  r.send(message({ type: MessageType.MsgTimeoutNow, to }));
}

