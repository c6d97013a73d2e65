/**
 * What the leader sends to each follower: appends (or a snapshot when the
 * entries are compacted) paced by the follower's flow-control state, and
 * heartbeats that carry the commit index and read-index contexts.
 */
import type { Raft } from "./raft.js";
import type { Entry, NodeId } from "./messages.js";
import { MessageType, entryPayloadBytes, message } from "./messages.js";
import { ProgressState } from "./progress.js";
import { assert, ErrCompacted, ErrSnapshotTemporarilyUnavailable } from "./errors.js";

export function bcastAppend(r: Raft): void {
  for (const id of r.tracker.memberIds()) {
    if (id !== r.id) sendAppend(r, id);
  }
}

export function sendAppend(r: Raft, to: NodeId): void {
  maybeSendAppend(r, to, true);
}

/**
 * Sends entries from the follower's next index, or a snapshot if they are
 * compacted. With sendIfEmpty false, sends only if there are entries.
 * Returns whether a message was sent.
 */
export function maybeSendAppend(r: Raft, to: NodeId, sendIfEmpty: boolean): boolean {
  const progress = r.tracker.progress.get(to);
  if (progress === undefined || progress.isPaused()) return false;
  const previousIndex = progress.next - 1;
  let previousTerm: number;
  let entries: Entry[];
  try {
    previousTerm = r.log.term(previousIndex);
    // A full window in replicate state sends an empty MsgApp: its answer clears the
    // window even if every message in flight was lost.
    const throttled = progress.state === ProgressState.Replicate && progress.inflights.full();
    entries =
      throttled || progress.next > r.log.lastIndex()
        ? []
        : r.log.slice(progress.next, r.log.lastIndex() + 1, r.config.maxSizePerMessageBytes);
  } catch (error) {
    if (error === ErrCompacted) return maybeSendSnapshot(r, to);
    throw error;
  }
  if (entries.length === 0 && !sendIfEmpty) return false;
  let bytes = 0;
  for (const entry of entries) bytes += entryPayloadBytes(entry);
  r.send(message({ type: MessageType.MsgApp, to, index: previousIndex, logTerm: previousTerm, entries, commit: r.log.committed }));
  progress.sentEntries(entries.length, bytes);
  return true;
}

function maybeSendSnapshot(r: Raft, to: NodeId): boolean {
  const progress = r.tracker.progress.get(to)!;
  if (!progress.recentActive) {
    r.trace(`ignored sending snapshot to ${to}: not recently active`);
    return false;
  }
  let snapshot;
  try {
    snapshot = r.log.snapshot();
  } catch (error) {
    if (error === ErrSnapshotTemporarilyUnavailable) return false; // the leader retries later
    throw error;
  }
  assert(snapshot.metadata.index !== 0, "raft: need non-empty snapshot");
  r.trace(`sending snapshot ${snapshot.metadata.index}@${snapshot.metadata.term} to ${to}`);
  progress.becomeSnapshot(snapshot.metadata.index);
  r.send(message({ type: MessageType.MsgSnap, to, snapshot }));
  return true;
}

export function sendHeartbeat(r: Raft, to: NodeId, context: Uint8Array): void {
  // Never advance a follower's commit beyond what it is known to have.
  const commit = Math.min(r.tracker.progress.get(to)!.match, r.log.committed);
  r.send(message({ type: MessageType.MsgHeartbeat, to, commit, context }));
}

export function bcastHeartbeat(r: Raft, context: Uint8Array = r.readOnly.lastPendingRequestContext() ?? new Uint8Array(0)): void {
  for (const id of r.tracker.memberIds()) {
    if (id !== r.id) sendHeartbeat(r, id, context);
  }
}
