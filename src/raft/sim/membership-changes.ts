/**
 * The simulator's membership workload: at the leader, add or remove learners,
 * promote and demote voters, replace two members through a joint
 * configuration (auto or explicit), and leave an explicit joint configuration.
 */
import type { NodeId } from "../messages.js";
import { ConfChangeTransition, ConfChangeType } from "../messages.js";
import type { SeededRandom } from "../random.js";
import type { SimNode } from "./sim-node.js";

export type ProposedChange = "none" | "leave-joint" | "simple" | "joint";

/** Proposes one random change at the leader; returns what kind it proposed. */
export function proposeMembershipChange(leader: SimNode, ids: readonly NodeId[], random: SeededRandom, trace: (line: string) => void): ProposedChange {
  const conf = leader.node!.raft.tracker.confState();
  const outside = ids.filter((id) => !conf.voters.includes(id) && !conf.learners.includes(id));
  const options: { type: ConfChangeType; nodeId: NodeId }[] = [];
  for (const id of outside) options.push({ type: ConfChangeType.ConfChangeAddLearnerNode, nodeId: id });
  for (const id of conf.learners) {
    options.push({ type: ConfChangeType.ConfChangeAddNode, nodeId: id });
    options.push({ type: ConfChangeType.ConfChangeRemoveNode, nodeId: id });
  }
  if (conf.voters.length > 2) {
    for (const id of conf.voters) {
      options.push({ type: ConfChangeType.ConfChangeRemoveNode, nodeId: id });
      options.push({ type: ConfChangeType.ConfChangeAddLearnerNode, nodeId: id });
    }
  }
  if (leader.node!.raft.tracker.isJoint()) {
    // An explicit joint configuration is left by an empty ConfChangeV2.
    const error = leader.node!.proposeConfChange({ transition: ConfChangeTransition.ConfChangeTransitionAuto, changes: [], context: new Uint8Array(0) });
    trace(`propose leaving the joint configuration at leader ${leader.id}${error === undefined ? "" : `: ${error.code}`}`);
    return "leave-joint";
  }
  if (options.length === 0) return "none";
  const change = options[random.nextInt(options.length)]!;
  const second = options.filter((o) => o.nodeId !== change.nodeId);
  const other = second.length > 0 && random.chance(0.3) ? second[random.nextInt(second.length)]! : undefined;
  // Keep at least two voters, as for simple changes (see the report on single-voter shrinking).
  if (other !== undefined && incomingVotersAfter(conf.voters, [change, other]) >= 2) {
    const transition = random.chance(0.5) ? ConfChangeTransition.ConfChangeTransitionAuto : ConfChangeTransition.ConfChangeTransitionJointExplicit;
    const error = leader.node!.proposeConfChange({ transition, changes: [change, other], context: new Uint8Array(0) });
    trace(
      `propose joint change ${ConfChangeTransition[transition]} [${ConfChangeType[change.type]} ${change.nodeId}, ${ConfChangeType[other.type]} ${other.nodeId}] at leader ${leader.id}${error === undefined ? "" : `: ${error.code}`}`,
    );
    return "joint";
  }
  const error = leader.node!.proposeConfChange({ id: 0n, type: change.type, nodeId: change.nodeId, context: new Uint8Array(0) });
  trace(`propose conf change ${ConfChangeType[change.type]} ${change.nodeId} at leader ${leader.id}${error === undefined ? "" : `: ${error.code}`}`);
  return "simple";
}

function incomingVotersAfter(voters: readonly NodeId[], changes: readonly { type: ConfChangeType; nodeId: NodeId }[]): number {
  const result = new Set(voters);
  for (const change of changes) {
    if (change.type === ConfChangeType.ConfChangeAddNode) result.add(change.nodeId);
    else result.delete(change.nodeId);
  }
  return result.size;
}
