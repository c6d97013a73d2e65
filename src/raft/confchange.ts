/**
 * Membership changes, computed on a copy of the tracker's configuration: the
 * simple protocol (one voter added or removed at a time, learners freely) and
 * joint consensus (enter a joint config C_old,new, later leave it).
 * A change that is not allowed returns an error value and changes nothing.
 */
import type { ConfState, NodeId } from "./messages.js";
import { ConfChangeType } from "./messages.js";
import type { Progress } from "./progress.js";
import type { ProgressTracker, TrackerConfig } from "./tracker.js";
import { cloneTrackerConfig, emptyTrackerConfig } from "./tracker.js";
import { RaftError, assert } from "./errors.js";

export interface SingleChange {
  type: ConfChangeType;
  nodeId: NodeId;
}

export interface ChangeResult {
  config: TrackerConfig;
  progress: Map<NodeId, Progress>;
}

function invalid(reason: string): RaftError {
  return new RaftError("invalid_conf_change", `raft: invalid configuration change: ${reason}`);
}

class Changer {
  readonly config: TrackerConfig;
  readonly progress: Map<NodeId, Progress>;

  constructor(private readonly tracker: ProgressTracker, config: TrackerConfig, progress: Map<NodeId, Progress>, private readonly lastIndex: number) {
    this.config = cloneTrackerConfig(config);
    this.progress = new Map(progress);
  }

  /** A private copy of a progress before mutating it, so that a failed change leaks nothing. */
  private own(id: NodeId): Progress {
    const original = this.progress.get(id)!;
    const copy = this.tracker.newProgress(original.next, original.isLearner);
    Object.assign(copy, { ...original, inflights: original.inflights });
    this.progress.set(id, copy);
    return copy;
  }

  apply(changes: readonly SingleChange[]): RaftError | undefined {
    for (const change of changes) {
      if (change.nodeId === 0n) continue;
      switch (change.type) {
        case ConfChangeType.ConfChangeAddNode:
          this.makeVoter(change.nodeId);
          break;
        case ConfChangeType.ConfChangeAddLearnerNode:
          this.makeLearner(change.nodeId);
          break;
        case ConfChangeType.ConfChangeRemoveNode:
          this.remove(change.nodeId);
          break;
        case ConfChangeType.ConfChangeUpdateNode:
          break;
        default:
          return invalid(`unknown change type ${change.type as number}`);
      }
    }
    if (this.config.voters.incoming.size === 0) return invalid("removed all voters");
    return undefined;
  }

  private initProgress(id: NodeId, isLearner: boolean): void {
    if (isLearner) this.config.learners.add(id);
    else this.config.voters.incoming.add(id);
    const progress = this.tracker.newProgress(Math.max(this.lastIndex, 1), isLearner);
    // A new member counts as active so that check-quorum does not depose the leader at once.
    progress.recentActive = true;
    this.progress.set(id, progress);
  }

  private makeVoter(id: NodeId): void {
    if (!this.progress.has(id)) {
      this.initProgress(id, false);
      return;
    }
    this.own(id).isLearner = false;
    this.config.learners.delete(id);
    this.config.learnersNext.delete(id);
    this.config.voters.incoming.add(id);
  }

  private makeLearner(id: NodeId): void {
    const existing = this.progress.get(id);
    if (existing === undefined) {
      this.initProgress(id, true);
      return;
    }
    if (existing.isLearner) return;
    this.remove(id);
    this.progress.set(id, existing);
    const progress = this.own(id);
    if (this.config.voters.outgoing.has(id)) {
      this.config.learnersNext.add(id);
    } else {
      progress.isLearner = true;
      this.config.learners.add(id);
    }
  }

  private remove(id: NodeId): void {
    if (!this.progress.has(id)) return;
    this.config.voters.incoming.delete(id);
    this.config.learners.delete(id);
    this.config.learnersNext.delete(id);
    if (!this.config.voters.outgoing.has(id)) this.progress.delete(id);
  }

  checkInvariants(): void {
    const all = [...this.config.voters.incoming, ...this.config.voters.outgoing, ...this.config.learners, ...this.config.learnersNext];
    for (const id of all) assert(this.progress.has(id), `confchange: no progress for ${id}`);
    for (const id of this.config.learnersNext) {
      assert(this.config.voters.outgoing.has(id), `confchange: ${id} is in learnersNext but not an outgoing voter`);
      assert(!this.progress.get(id)!.isLearner, `confchange: ${id} is in learnersNext but already a learner`);
    }
    for (const id of this.config.learners) {
      assert(!this.config.voters.incoming.has(id) && !this.config.voters.outgoing.has(id), `confchange: ${id} is learner and voter`);
      assert(this.progress.get(id)!.isLearner, `confchange: ${id} is a learner without the learner flag`);
    }
    if (this.config.voters.outgoing.size === 0) {
      assert(this.config.learnersNext.size === 0, "confchange: learnersNext outside a joint config");
      assert(!this.config.autoLeave, "confchange: autoLeave outside a joint config");
    }
  }

  result(): ChangeResult {
    this.checkInvariants();
    return { config: this.config, progress: this.progress };
  }
}

function voterSymmetricDifference(a: ReadonlySet<NodeId>, b: ReadonlySet<NodeId>): number {
  let count = 0;
  for (const id of a) if (!b.has(id)) count++;
  for (const id of b) if (!a.has(id)) count++;
  return count;
}

/** The simple protocol: at most one voter added or removed. */
export function applySimple(tracker: ProgressTracker, changes: readonly SingleChange[], lastIndex: number): ChangeResult | RaftError {
  if (tracker.isJoint()) return invalid("can't apply simple config change in joint config");
  const changer = new Changer(tracker, tracker.config, tracker.progress, lastIndex);
  const error = changer.apply(changes);
  if (error !== undefined) return error;
  if (voterSymmetricDifference(tracker.config.voters.incoming, changer.config.voters.incoming) > 1) {
    return invalid("more than one voter changed without entering joint config");
  }
  return changer.result();
}

/** Enters the joint configuration C_old,new. */
export function enterJoint(tracker: ProgressTracker, autoLeave: boolean, changes: readonly SingleChange[], lastIndex: number): ChangeResult | RaftError {
  if (tracker.isJoint()) return invalid("config is already joint");
  if (tracker.config.voters.incoming.size === 0) return invalid("can't make a zero-voter config joint");
  const changer = new Changer(tracker, tracker.config, tracker.progress, lastIndex);
  changer.config.voters.outgoing = new Set(changer.config.voters.incoming);
  const error = changer.apply(changes);
  if (error !== undefined) return error;
  changer.config.autoLeave = autoLeave;
  return changer.result();
}

/** Leaves a joint configuration for its incoming half. */
export function leaveJoint(tracker: ProgressTracker): ChangeResult | RaftError {
  if (!tracker.isJoint()) return invalid("can't leave a non-joint config");
  const changer = new Changer(tracker, tracker.config, tracker.progress, 0);
  const config = changer.config;
  for (const id of config.learnersNext) {
    config.learners.add(id);
    const original = changer.progress.get(id)!;
    const copy = tracker.newProgress(original.next, true);
    Object.assign(copy, { ...original, inflights: original.inflights, isLearner: true });
    changer.progress.set(id, copy);
  }
  config.learnersNext = new Set();
  for (const id of config.voters.outgoing) {
    if (!config.voters.incoming.has(id) && !config.learners.has(id)) changer.progress.delete(id);
  }
  config.voters.outgoing = new Set();
  config.autoLeave = false;
  return changer.result();
}

/** Rebuilds a tracker configuration from a ConfState (on start and on snapshot install). */
export function restoreConfState(tracker: ProgressTracker, state: ConfState, lastIndex: number): ChangeResult {
  const empty = { config: emptyTrackerConfig(), progress: new Map<NodeId, Progress>() };
  const changer = new Changer(tracker, empty.config, empty.progress, lastIndex);
  const first = state.votersOutgoing.length > 0 ? state.votersOutgoing : state.voters;
  for (const id of first) changer.apply([{ type: ConfChangeType.ConfChangeAddNode, nodeId: id }]);
  if (state.votersOutgoing.length === 0) {
    for (const id of state.learners) changer.apply([{ type: ConfChangeType.ConfChangeAddLearnerNode, nodeId: id }]);
    return changer.result();
  }
  changer.config.voters.outgoing = new Set(changer.config.voters.incoming);
  changer.config.voters.incoming = new Set();
  for (const id of state.voters) changer.apply([{ type: ConfChangeType.ConfChangeAddNode, nodeId: id }]);
  for (const id of [...state.learners, ...state.learnersNext]) {
    changer.apply([{ type: ConfChangeType.ConfChangeAddLearnerNode, nodeId: id }]);
  }
  changer.config.autoLeave = state.autoLeave;
  return changer.result();
}
