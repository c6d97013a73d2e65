import type { ClusterMemberAttrSetRequest } from "../gen/membershippb/membership_pb.js";
import type { Backend } from "../mvcc/backend.js";
import { ConfChangeType, decodeConfChange, decodeConfChangeV2, EntryType, RaftError, type Entry } from "../raft/index.js";
import type { PeerTransport } from "../transport/peer-transport.js";
import type { ApplyResult } from "./applier.js";
import * as errors from "./errors.js";
import type { Logger } from "./logger.js";
import { decodeMember, type Membership } from "./membership.js";
import type { RaftNode } from "./raft-node.js";
import { storeConfState } from "./storage.js";

export type ConfChangeResult = ApplyResult;

/**
 * Applies committed membership changes: checks each against the membership as
 * it is when the entry is applied (so every member decides alike), then
 * changes raft's configuration, the stored membership and the peer
 * connections together. Runs inside the backend write of its entry.
 */
export class ConfChangeApplier {
  /** Set once this member's own removal is applied. */
  removedSelf = false;

  constructor(
    private readonly memberId: bigint,
    private readonly membership: Membership,
    private readonly backend: Backend,
    private readonly transport: PeerTransport,
    private readonly raft: RaftNode,
    private readonly logger: Logger,
  ) {}

  apply(entry: Entry): { id: bigint; result: ConfChangeResult } {
    if (entry.type === EntryType.EntryConfChangeV2) {
      // Only raft itself proposes these (leaving a joint configuration).
      const state = this.raft.raw.applyConfChange(decodeConfChangeV2(entry.data));
      if (!(state instanceof RaftError)) storeConfState(this.backend, state);
      return { id: 0n, result: {} };
    }
    const change = decodeConfChange(entry.data);
    const member = change.context.length > 0 ? decodeMember(change.context) : undefined;
    const refused = this.membership.check(change, member);
    if (refused !== undefined) return { id: change.id, result: { error: refused } };
    const state = this.raft.raw.applyConfChange(change);
    if (state instanceof RaftError) {
      this.logger.warn("refused a configuration change", { error: state.message });
      return { id: change.id, result: { error: errors.ErrMemberNotEnoughStarted } };
    }
    this.membership.apply(change, member);
    storeConfState(this.backend, state);
    const id = change.nodeId;
    switch (change.type) {
      case ConfChangeType.ConfChangeAddNode:
      case ConfChangeType.ConfChangeAddLearnerNode:
        if (id !== this.memberId && this.transport.peerStatus(id) === undefined) this.transport.addPeer(id, this.membership.get(id)?.peerUrls ?? []);
        break;
      case ConfChangeType.ConfChangeRemoveNode:
        if (id === this.memberId) this.removedSelf = true;
        else this.transport.removePeer(id);
        break;
      case ConfChangeType.ConfChangeUpdateNode:
        if (id !== this.memberId && member !== undefined) this.transport.updatePeer(id, member.peerUrls);
        break;
    }
    this.logger.info("applied a configuration change", { type: ConfChangeType[change.type], "member-id": id.toString(16) });
    return { id: change.id, result: {} };
  }

  /** Connects to every member of the membership and to no one else (after a snapshot replaced it). */
  syncPeers(): void {
    const members = this.membership.list().filter((member) => member.id !== this.memberId);
    for (const id of this.transport.peerIds()) if (!members.some((member) => member.id === id)) this.transport.removePeer(id);
    for (const member of members) if (this.transport.peerStatus(member.id) === undefined) this.transport.addPeer(member.id, member.peerUrls);
    if (this.membership.isRemoved(this.memberId)) this.removedSelf = true;
  }

  /** A member published its name and client URLs. */
  setAttributes(request: ClusterMemberAttrSetRequest): ApplyResult {
    this.membership.setAttributes(request.memberID, request.memberAttributes?.name ?? "", [...(request.memberAttributes?.clientUrls ?? [])]);
    return {};
  }
}
