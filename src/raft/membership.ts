/**
 * Applying configuration changes and snapshots to a raft node. A change takes
 * effect when the application applies its committed entry (applyConfChange);
 * a snapshot replaces the configuration with the one it carries.
 */
import type { Raft } from "./raft.js";
import { StateType } from "./raft.js";
import type { ConfChange, ConfChangeV2, ConfState, NodeId, Snapshot } from "./messages.js";
import { ConfChangeTransition, None } from "./messages.js";
import type { Progress } from "./progress.js";
import type { TrackerConfig } from "./tracker.js";
import { ProgressTracker } from "./tracker.js";
import type { RaftError } from "./errors.js";
import { RaftError as RaftErrorClass, assert } from "./errors.js";
import { applySimple, enterJoint, leaveJoint, restoreConfState } from "./confchange.js";
import { transferLeadership } from "./leader.js";
import { bcastAppend, maybeSendAppend } from "./replication.js";

export function asV2(change: ConfChange | ConfChangeV2): ConfChangeV2 {
  if ("changes" in change) return change;
  return {
    transition: ConfChangeTransition.ConfChangeTransitionAuto,
    changes: [{ type: change.type, nodeId: change.nodeId }],
    context: change.context,
  };
}

function leavesJoint(change: ConfChangeV2): boolean {
  return change.transition === ConfChangeTransition.ConfChangeTransitionAuto && change.changes.length === 0;
}

/** Whether the change needs joint consensus, and if so whether raft leaves the joint config by itself. */
function entersJoint(change: ConfChangeV2): { joint: boolean; autoLeave: boolean } {
  if (change.transition === ConfChangeTransition.ConfChangeTransitionAuto && change.changes.length <= 1) {
    return { joint: false, autoLeave: false };
  }
  return { joint: true, autoLeave: change.transition !== ConfChangeTransition.ConfChangeTransitionJointExplicit };
}

/**
 * Applies a committed conf change. An invalid change (e.g. removing the last
 * voter) returns an error and leaves the configuration as it was; since every
 * member applies the same entries to the same configuration, all agree.
 */
export function applyConfChange(r: Raft, change: ConfChange | ConfChangeV2): ConfState | RaftError {
  const v2 = asV2(change);
  const lastIndex = r.log.lastIndex();
  let result;
  if (leavesJoint(v2)) {
    result = leaveJoint(r.tracker);
  } else {
    const { joint, autoLeave } = entersJoint(v2);
    result = joint ? enterJoint(r.tracker, autoLeave, v2.changes, lastIndex) : applySimple(r.tracker, v2.changes, lastIndex);
  }
  if (result instanceof RaftErrorClass) return result;
  return switchToConfig(r, result.config, result.progress);
}

/** Installs a new configuration and adjusts the node's role and replication to it. */
export function switchToConfig(r: Raft, config: TrackerConfig, progress: Map<NodeId, Progress>): ConfState {
  r.tracker.config = config;
  r.tracker.progress = progress;
  r.trace(`switched to configuration voters=${[...config.voters.incoming].join(",")}${config.voters.outgoing.size > 0 ? `&&${[...config.voters.outgoing].join(",")}` : ""} learners=${[...config.learners].join(",")}`);
  const confState = r.tracker.confState();
  const self = progress.get(r.id);
  r.isLearner = self !== undefined && self.isLearner;
  if ((self === undefined || r.isLearner) && r.state === StateType.Leader) {
    handOverLeadership(r);
    return confState;
  }
  if (r.state !== StateType.Leader || confState.voters.length === 0) return confState;
  if (r.maybeCommit()) {
    bcastAppend(r);
  } else {
    for (const id of r.tracker.memberIds()) if (id !== r.id) maybeSendAppend(r, id, false);
  }
  if (r.leadTransferee !== None && !r.tracker.isVoter(r.leadTransferee)) r.abortLeaderTransfer();
  return confState;
}

/**
 * A leader removed or demoted hands leadership to the most caught-up remaining
 * voter (which also learns that the change committed, so that it can win in the
 * new configuration); if that does not finish within an election timeout it
 * steps down (tickHeartbeat). Stepping down at once could strand the remaining
 * voters in a joint configuration whose outgoing majority needs the removed
 * members' votes.
 */
function handOverLeadership(r: Raft): void {
  let target: NodeId = None;
  let best = -1;
  for (const id of r.tracker.memberIds()) {
    const progress = r.tracker.progress.get(id)!;
    if (id === r.id || progress.isLearner || !r.tracker.isVoter(id)) continue;
    if (progress.match > best) {
      best = progress.match;
      target = id;
    }
  }
  if (target === None) {
    r.becomeFollower(r.term, None);
    return;
  }
  r.trace(`removed from the configuration: handing leadership to ${target}`);
  transferLeadership(r, target);
}

/**
 * Installs a snapshot from the leader. Returns false when it is stale, when
 * the log already holds it (then the commit index moves up), or when this node
 * is not in its configuration.
 */
export function restoreSnapshot(r: Raft, snapshot: Snapshot): boolean {
  const { index, term, confState } = snapshot.metadata;
  if (index <= r.log.committed) return false;
  if (r.log.applying > r.log.applied) {
    // Committed entries (maybe conf changes) are being applied to the current configuration;
    // installing the snapshot under them would mix the two. The leader sends it again.
    r.trace(`deferred snapshot ${index}@${term}: entries up to ${r.log.applying} are being applied`);
    return false;
  }
  if (r.state !== StateType.Follower) {
    // Only a follower receives a snapshot from its leader; move on to a safe state.
    r.becomeFollower(r.term + 1, None);
    return false;
  }
  const members = [...confState.voters, ...confState.learners, ...confState.votersOutgoing];
  if (!members.includes(r.id)) {
    r.trace(`attempted to restore snapshot ${index}@${term} but it is not in the configuration`);
    return false;
  }
  if (r.log.matchTerm(index, term)) {
    // The log already has the snapshot's last entry: only the commit index moves.
    r.log.commitTo(index);
    return false;
  }
  r.log.restore(snapshot);
  r.tracker = new ProgressTracker(r.config.maxInflightMessages, r.config.maxInflightBytes);
  const restored = restoreConfState(r.tracker, confState, r.log.lastIndex());
  const installed = switchToConfig(r, restored.config, restored.progress);
  assert(sameMembers(installed, confState), "raft: snapshot configuration was not restored exactly");
  const self = r.tracker.progress.get(r.id);
  self?.maybeUpdate(self.next - 1);
  return true;
}

function sameMembers(a: ConfState, b: ConfState): boolean {
  const key = (s: ConfState): string =>
    [s.voters, s.learners, s.votersOutgoing, s.learnersNext].map((ids) => [...ids].sort().join(",")).join("|") + `|${s.autoLeave}`;
  return key(a) === key(b);
}
