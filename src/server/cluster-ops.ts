import { ConfChangeType, type ConfChange } from "../raft/index.js";
import * as errors from "./errors.js";
import { memberIdFromPeerUrls } from "./ids.js";
import type { EtcdServer } from "./member.js";
import { encodeMember, type Member } from "./membership.js";
import { callLeader } from "./peer-endpoints.js";

/** A learner counts as in sync once its log reaches this share of the leader's (etcd's rule). */
const learnerReadyShare = 0.9;
/** How long peers must have been connected before a reconfiguration is allowed (etcd's HealthInterval). */
const healthIntervalMs = 5000;
/** How often a leadership transfer is checked for completion. */
const transferCheckMs = 20;

/** etcd's URL rule for peer URLs: http or https, host and port, nothing else. */
export function validPeerUrls(urls: readonly string[]): boolean {
  if (urls.length === 0) return false;
  return urls.every((text) => {
    try {
      const url = new URL(text);
      return (url.protocol === "http:" || url.protocol === "https:") && url.port !== "" && (url.pathname === "/" || url.pathname === "") && url.search === "" && !text.endsWith("/");
    } catch {
      return false;
    }
  });
}

function change(type: ConfChangeType, nodeId: bigint, member?: Member): ConfChange {
  return { id: 0n, type, nodeId, context: member === undefined ? new Uint8Array(0) : encodeMember(member) };
}

/**
 * Membership changes as the Cluster service asks for them, with etcd's checks
 * before proposing (--strict-reconfig-check: never leave the cluster without a
 * quorum of started, connected members) and its errors.
 */
export class ClusterOps {
  constructor(private readonly server: EtcdServer) {}

  private get membership() {
    return this.server.membership;
  }

  /** A peer URL already in use, or too many learners, is refused when the change is applied, as in etcd. */
  async add(peerUrls: string[], isLearner: boolean): Promise<Member> {
    if (!validPeerUrls(peerUrls)) throw errors.ErrMemberBadUrls;
    if (this.server.config.strictReconfigCheck) this.checkReadyToAdd(isLearner);
    const id = memberIdFromPeerUrls(peerUrls, String(Math.floor(Date.now() / 1000)));
    const member: Member = { id, name: "", peerUrls, clientUrls: [], isLearner };
    await this.server.proposeConfChange(change(isLearner ? ConfChangeType.ConfChangeAddLearnerNode : ConfChangeType.ConfChangeAddNode, id, member));
    return member;
  }

  async remove(id: bigint): Promise<void> {
    const member = this.membership.get(id);
    if (member === undefined) throw errors.ErrMemberNotFound;
    if (this.server.config.strictReconfigCheck && !member.isLearner) this.checkReadyToRemoveVoter(id);
    await this.server.proposeConfChange(change(ConfChangeType.ConfChangeRemoveNode, id));
  }

  async update(id: bigint, peerUrls: string[]): Promise<void> {
    if (!validPeerUrls(peerUrls)) throw errors.ErrMemberBadUrls;
    const member = this.membership.get(id);
    if (member === undefined) throw errors.ErrMemberNotFound;
    await this.server.proposeConfChange(change(ConfChangeType.ConfChangeUpdateNode, id, { ...member, peerUrls }));
  }

  /** Promotes a learner whose log has caught up with the leader's; only the leader can tell. */
  async promote(id: bigint): Promise<void> {
    const member = this.membership.get(id);
    if (member === undefined) throw errors.ErrMemberNotFound;
    if (!member.isLearner) throw errors.ErrMemberNotLearner;
    if (!this.server.raft.isLeader) {
      const leader = this.membership.get(this.server.leaderId);
      if (leader === undefined) throw errors.ErrNoLeader;
      await callLeader(leader.peerUrls, "promote", id, this.server.requestTimeoutMs, this.server.config.peerTls);
      return;
    }
    const progress = this.server.raft.raw.status().progress;
    const leaderMatch = progress.get(this.server.memberId)?.match ?? 0;
    const learnerMatch = progress.get(id)?.match ?? 0;
    if (learnerMatch < leaderMatch * learnerReadyShare) throw errors.ErrLearnerNotReady;
    await this.server.proposeConfChange(change(ConfChangeType.ConfChangeAddNode, id, { ...member, isLearner: false }));
  }

  /** Hands leadership to `target`, a voting member; resolves once it leads. */
  async moveLeader(target: bigint): Promise<void> {
    if (!this.server.raft.isLeader) throw errors.ErrNotLeader;
    const member = this.membership.get(target);
    if (member === undefined || member.isLearner) throw errors.ErrBadLeaderTransferee;
    if (target === this.server.memberId) return;
    this.server.raft.transferLeader(target);
    const deadline = performance.now() + this.server.requestTimeoutMs;
    while (this.server.leaderId !== target) {
      if (performance.now() > deadline) throw errors.ErrTimeoutLeaderTransfer;
      await new Promise((resolve) => setTimeout(resolve, transferCheckMs));
    }
  }

  /**
   * etcd's mayAddMember: to add a voter, a quorum of the voters counting the
   * new one must have started (published themselves); for any member, every
   * voter must have been connected for `healthIntervalMs`.
   */
  private checkReadyToAdd(isLearner: boolean): void {
    const voters = this.membership.voters();
    if (!isLearner) {
      const started = voters.filter((member) => member.name !== "").length;
      const members = voters.length + 1;
      // Adding a second member to a one-member cluster (to restore its data) is allowed.
      const restoring = started === 1 && members === 2;
      if (!restoring && started < Math.floor(members / 2) + 1) throw errors.ErrMemberNotEnoughStarted;
    }
    if (!voters.every((member) => this.connectedSince(member.id))) throw errors.ErrUnhealthy;
  }

  /**
   * etcd's mayRemoveMember: without the removed voter, a quorum of the others
   * must have started; unless it is down already, the voters connected for
   * `healthIntervalMs` must still form a quorum without it.
   */
  private checkReadyToRemoveVoter(id: bigint): void {
    const voters = this.membership.voters();
    const others = voters.filter((member) => member.id !== id);
    const started = others.filter((member) => member.name !== "").length;
    if (started < Math.floor(others.length / 2) + 1) {
      this.server.logger.warn("rejecting member remove request; not enough started members", { "started-members": started, "remaining-voting-members": others.length });
      throw errors.ErrMemberNotEnoughStarted;
    }
    // A member that is down is not part of the active quorum: removing it is safe.
    if (id !== this.server.memberId && this.server.peerActiveSince(id) === undefined) return;
    const active = voters.filter((member) => this.connectedSince(member.id)).length;
    if (active - 1 < 1 + Math.floor((voters.length - 1) / 2)) {
      this.server.logger.warn("rejecting member remove request; not enough healthy members", { "active-members": active, "voting-members": voters.length });
      throw errors.ErrUnhealthy;
    }
  }

  /** Whether this member has been connected to `id` for at least `healthIntervalMs` (itself always). */
  private connectedSince(id: bigint): boolean {
    if (id === this.server.memberId) return true;
    const since = this.server.peerActiveSince(id);
    return since !== undefined && performance.now() - since >= healthIntervalMs;
  }
}
