import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { MemberSchema, type Member as MemberRecord } from "../gen/membershippb/membership_pb.js";
import type { Backend } from "../mvcc/backend.js";
import { ConfChangeType, type ConfChange } from "../raft/index.js";
import * as errors from "./errors.js";

/** One member of the cluster, as the Cluster service lists it. */
export interface Member {
  id: bigint;
  /** Empty until the member has started and published it. */
  name: string;
  peerUrls: string[];
  clientUrls: string[];
  isLearner: boolean;
}

/** At most this many learners at once, as etcd allows. */
export const maxLearners = 1;

export function encodeMember(member: Member): Uint8Array {
  return toBinary(
    MemberSchema,
    create(MemberSchema, {
      ID: member.id,
      raftAttrs: { peerUrls: member.peerUrls, isLearner: member.isLearner },
      memberAttrs: { name: member.name, clientUrls: member.clientUrls },
    }),
  );
}

export function decodeMember(bytes: Uint8Array): Member {
  const record: MemberRecord = fromBinary(MemberSchema, bytes);
  return {
    id: record.ID,
    name: record.memberAttrs?.name ?? "",
    peerUrls: [...(record.raftAttrs?.peerUrls ?? [])],
    clientUrls: [...(record.memberAttrs?.clientUrls ?? [])],
    isLearner: record.raftAttrs?.isLearner ?? false,
  };
}

function idKey(id: bigint): Buffer {
  return Buffer.from(id.toString(16).padStart(16, "0"));
}

/**
 * The cluster's members, kept in the backend's `members` bucket (and removed
 * ids in `members_removed`) so that they change in the same transaction as the
 * applied index. Conf change entries carry the member they add or change.
 */
export class Membership {
  private readonly members = new Map<bigint, Member>();
  private readonly removed = new Set<bigint>();

  constructor(private readonly backend: Backend) {
    this.reload();
  }

  /** Loads the membership from the backend again (replaced by a snapshot). */
  reload(): void {
    this.members.clear();
    this.removed.clear();
    this.backend.forEach("members", (_, value) => {
      const member = decodeMember(value);
      this.members.set(member.id, member);
    });
    this.backend.forEach("members_removed", (key) => this.removed.add(BigInt(`0x${key.toString()}`)));
  }

  list(): Member[] {
    return [...this.members.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  get(id: bigint): Member | undefined {
    return this.members.get(id);
  }

  isRemoved(id: bigint): boolean {
    return this.removed.has(id);
  }

  get size(): number {
    return this.members.size;
  }

  voters(): Member[] {
    return this.list().filter((member) => !member.isLearner);
  }

  /**
   * The error etcd gives for a conf change that does not fit the current
   * membership, or undefined when it fits. Checked when proposing and again
   * when applying, since other changes may have been applied in between.
   */
  check(change: ConfChange, member: Member | undefined): errors.EtcdError | undefined {
    const id = change.nodeId;
    if (this.removed.has(id)) return errors.ErrMemberNotFound;
    switch (change.type) {
      case ConfChangeType.ConfChangeAddNode:
      case ConfChangeType.ConfChangeAddLearnerNode: {
        const existing = this.members.get(id);
        if (existing !== undefined) {
          // Adding an existing learner as a voter is its promotion.
          return change.type === ConfChangeType.ConfChangeAddNode && existing.isLearner ? undefined : errors.ErrMemberExists;
        }
        if (member !== undefined && this.peerUrlTaken(member.peerUrls, id)) return errors.ErrPeerUrlExists;
        if (change.type === ConfChangeType.ConfChangeAddLearnerNode && this.list().filter((m) => m.isLearner).length >= maxLearners) return errors.ErrTooManyLearners;
        return undefined;
      }
      case ConfChangeType.ConfChangeRemoveNode:
        return this.members.has(id) ? undefined : errors.ErrMemberNotFound;
      case ConfChangeType.ConfChangeUpdateNode:
        if (!this.members.has(id)) return errors.ErrMemberNotFound;
        if (member !== undefined && this.peerUrlTaken(member.peerUrls, id)) return errors.ErrPeerUrlExists;
        return undefined;
      default:
        return undefined;
    }
  }

  private peerUrlTaken(urls: readonly string[], except: bigint): boolean {
    for (const other of this.members.values()) {
      if (other.id !== except && other.peerUrls.some((url) => urls.includes(url))) return true;
    }
    return false;
  }

  /** Applies a checked conf change; `member` is what its context carried. Call inside a backend write. */
  apply(change: ConfChange, member: Member | undefined): void {
    const id = change.nodeId;
    switch (change.type) {
      case ConfChangeType.ConfChangeAddNode:
      case ConfChangeType.ConfChangeAddLearnerNode: {
        const existing = this.members.get(id);
        const next: Member =
          existing !== undefined
            ? { ...existing, isLearner: false }
            : { id, name: member?.name ?? "", peerUrls: member?.peerUrls ?? [], clientUrls: member?.clientUrls ?? [], isLearner: change.type === ConfChangeType.ConfChangeAddLearnerNode };
        this.save(next);
        break;
      }
      case ConfChangeType.ConfChangeRemoveNode:
        this.members.delete(id);
        this.removed.add(id);
        this.backend.delete("members", idKey(id));
        this.backend.put("members_removed", idKey(id), Buffer.from("removed"));
        break;
      case ConfChangeType.ConfChangeUpdateNode: {
        const existing = this.members.get(id);
        if (existing !== undefined && member !== undefined) this.save({ ...existing, peerUrls: member.peerUrls });
        break;
      }
    }
  }

  /** Records what a started member published: its name and client URLs. Call inside a backend write. */
  setAttributes(id: bigint, name: string, clientUrls: string[]): void {
    const existing = this.members.get(id);
    if (existing !== undefined) this.save({ ...existing, name, clientUrls });
  }

  private save(member: Member): void {
    this.members.set(member.id, member);
    this.backend.put("members", idKey(member.id), encodeMember(member));
  }
}
