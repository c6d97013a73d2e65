/**
 * Expected failures are named values with a stable code; callers compare by
 * identity (`error === ErrCompacted`). A broken invariant is not one of these:
 * it throws a RaftInvariantError and the process should stop.
 */
export class RaftError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = "RaftError";
  }
}

export class RaftInvariantError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RaftInvariantError";
  }
}

/** A proposal was dropped: no leader known, leader transfer in progress, or uncommitted log too large. */
export const ErrProposalDropped = new RaftError("proposal_dropped", "raft proposal dropped");
/** The requested index is below the first index kept in storage (compacted away). */
export const ErrCompacted = new RaftError("compacted", "requested index is unavailable due to compaction");
/** The requested index is beyond the last index in storage. */
export const ErrUnavailable = new RaftError("unavailable", "requested entry at index is unavailable");
/** The snapshot is being built; the leader retries later. */
export const ErrSnapshotTemporarilyUnavailable = new RaftError(
  "snapshot_temporarily_unavailable",
  "snapshot is temporarily unavailable",
);
/** A snapshot older than the current one was given to storage. */
export const ErrSnapOutOfDate = new RaftError("snapshot_out_of_date", "requested index is older than the existing snapshot");
/** A local-only message (MsgHup, MsgBeat, ...) arrived through step() from the network. */
export const ErrStepLocalMessage = new RaftError("step_local_message", "raft: cannot step raft local message");
/** A response from a node that is not in the configuration. */
export const ErrStepPeerNotFound = new RaftError("step_peer_not_found", "raft: cannot step as peer not found");
/** A configuration change that the configuration does not allow. */
export const ErrInvalidConfChange = new RaftError("invalid_conf_change", "raft: invalid configuration change");

export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new RaftInvariantError(message);
}
