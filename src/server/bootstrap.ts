import { ConfChangeType, decodeConfChange, encodeConfChange, EntryType, RawNode, SeededRandom, type Config as RaftConfig, type Entry, type HardState } from "../raft/index.js";
import { ServerRaftStorage } from "./snapshot.js";
import type { WalRecord } from "../wal/record.js";
import { ConfigError, type ServerConfig } from "./config.js";
import { clusterIdFromMembers, memberIdFromPeerUrls } from "./ids.js";
import { encodeMember, type Member } from "./membership.js";
import { appliedConfState, appliedTerm, DataDirError, type MemberStorage } from "./storage.js";
import type { RemoteCluster } from "./peer-endpoints.js";
import { entryRecord, hardStateRecord, metadataRecord, snapshotRecord } from "./wal-records.js";

/** How a member's raft node begins. */
export interface RaftStart {
  memberId: bigint;
  clusterId: bigint;
  node: RawNode;
  raftStorage: ServerRaftStorage;
  /** Records to write to the WAL before anything else (the ids of a new member). */
  firstRecords: WalRecord[];
  /** Members known before any entry is applied: the others to connect to. */
  initialPeers: Member[];
}

/** The raft settings every start shares. */
function raftConfig(config: ServerConfig, memberId: bigint, storage: ServerRaftStorage, applied: number): RaftConfig {
  return {
    id: memberId,
    storage,
    applied,
    electionTick: Math.floor(config.electionTimeoutMs / config.heartbeatIntervalMs),
    heartbeatTick: 1,
    checkQuorum: true,
    preVote: true,
    maxSizePerMessageBytes: 1024 * 1024,
    maxInflightMessages: 4096 / 8,
    maxUncommittedEntriesSizeBytes: 1 << 30,
    random: new SeededRandom(Number(memberId & 0xffff_ffffn) ^ Date.now()),
  };
}

/**
 * Starts raft from the data directory: a restart when the WAL or backend holds
 * the member's ids (cluster flags are then ignored, as etcd ignores them), a
 * new cluster from --initial-cluster otherwise.
 */
export function startRaft(config: ServerConfig, storage: MemberStorage, remote: RemoteCluster | undefined): RaftStart {
  const ids = existingIds(storage);
  if (ids !== undefined) return restart(config, storage, ids);
  if (storage.walState.entries.length > 0 || storage.store.consistentIndex() > 0) {
    throw new DataDirError(`data dir ${config.dataDir}: neither the WAL nor the backend holds the member's ids`);
  }
  if (config.initialClusterState === "existing") {
    if (remote === undefined) throw new ConfigError("--initial-cluster-state=existing needs the cluster's members");
    return joinExistingCluster(config, remote);
  }
  return bootstrapNewCluster(config, remote);
}

/** The member's ids when its data directory already holds them. */
export function existingIds(storage: MemberStorage): { memberId: bigint; clusterId: bigint } | undefined {
  return storage.walState.ids ?? storage.backendIds;
}

/** Peer URLs of the other members named in --initial-cluster, to ask a running cluster about itself. */
export function otherInitialPeerUrls(config: ServerConfig): string[] {
  return [...config.initialCluster].filter(([name]) => name !== config.name).flatMap(([, urls]) => urls);
}

/**
 * Joins a running cluster that has already added this member (`member add`):
 * --initial-cluster must name the cluster's members by their peer URLs, as
 * etcd checks; this member's id is the one the cluster gave its peer URLs.
 * Raft starts empty and learns the log, or a snapshot, from the leader.
 */
function joinExistingCluster(config: ServerConfig, remote: RemoteCluster): RaftStart {
  const local = initialMembers(config);
  const invalid = (reason: string) => new ConfigError(`error validating peerURLs of cluster ${remote.clusterId.toString(16)}: ${reason}`);
  if (remote.members.length !== local.length) throw invalid("member count is unequal");
  for (const member of remote.members) {
    if (!local.some((candidate) => sameUrls(candidate.peerUrls, member.peerUrls))) {
      throw invalid(`PeerURLs: no match found for existing member (${member.id.toString(16)}, [${member.peerUrls.join(" ")}])`);
    }
  }
  const named = localMember(config, local);
  const self = remote.members.find((member) => sameUrls(member.peerUrls, named.peerUrls))!;
  refuseBootstrapped(self);
  const raftStorage = new ServerRaftStorage();
  return {
    memberId: self.id,
    clusterId: remote.clusterId,
    node: new RawNode(raftConfig(config, self.id, raftStorage, 0)),
    raftStorage,
    firstRecords: [metadataRecord(self.id, remote.clusterId)],
    initialPeers: remote.members.filter((member) => member.id !== self.id),
  };
}

function sameUrls(a: readonly string[], b: readonly string[]): boolean {
  return [...a].sort().join(",") === [...b].sort().join(",");
}

/** This member's entry in --initial-cluster, which must be the peer URLs it advertises. */
function localMember(config: ServerConfig, members: Member[]): Member {
  const self = members.find((member) => member.name === config.name);
  if (self === undefined) throw new ConfigError(`couldn't find local name "${config.name}" in the initial cluster configuration`);
  if (!sameUrls(self.peerUrls, config.initialAdvertisePeerUrls)) {
    throw new ConfigError(
      `--initial-cluster has ${config.name}=${self.peerUrls.join(",")} but missing from --initial-advertise-peer-urls=${config.initialAdvertisePeerUrls.join(",")}`,
    );
  }
  return self;
}

/**
 * A member with an empty data dir whose cluster says it has published itself
 * lost its data (its votes and log among them): starting it afresh could undo
 * what it acknowledged, so it must be removed and added again instead.
 */
function refuseBootstrapped(self: Member | undefined): void {
  if (self !== undefined && self.clientUrls.length > 0) throw new ConfigError(`member ${self.id.toString(16)} has already been bootstrapped`);
}

/** The members of --initial-cluster, with ids derived from their peer URLs and the cluster token. */
export function initialMembers(config: ServerConfig): Member[] {
  return [...config.initialCluster].map(([name, peerUrls]) => ({
    id: memberIdFromPeerUrls(peerUrls, config.initialClusterToken),
    name,
    peerUrls,
    clientUrls: [],
    isLearner: false,
  }));
}

/**
 * A new cluster from --initial-cluster. When one of the other members already
 * runs (`remote`, if it answered) and lists this member as published, this
 * member's data dir was lost since: it is refused, as etcd refuses it.
 */
function bootstrapNewCluster(config: ServerConfig, remote: RemoteCluster | undefined): RaftStart {
  const members = initialMembers(config);
  const self = localMember(config, members);
  const ids = new Set(members.map((member) => member.id));
  if (ids.size !== members.length) throw new ConfigError("--initial-cluster has duplicate peer URLs");
  refuseBootstrapped(remote?.members.find((member) => member.id === self.id));
  const clusterId = clusterIdFromMembers([...ids]);
  const raftStorage = new ServerRaftStorage();
  const node = new RawNode(raftConfig(config, self.id, raftStorage, 0));
  node.bootstrap(members.map((member) => ({ id: member.id, context: encodeMember(member) })));
  return {
    memberId: self.id,
    clusterId,
    node,
    raftStorage,
    firstRecords: [metadataRecord(self.id, clusterId)],
    initialPeers: members.filter((member) => member.id !== self.id),
  };
}

/**
 * A restart: the backend is the snapshot (its applied index, term and raft
 * configuration are stored with its data), and the WAL supplies the entries
 * after it and the last hard state.
 */
function restart(config: ServerConfig, storage: MemberStorage, ids: { memberId: bigint; clusterId: bigint }): RaftStart {
  const { walState, backend } = storage;
  // The data dir names its member: another member's, or another cluster's
  // member of another name, is refused rather than served under a new name.
  const owner = storage.membership.list().find((member) => member.id === ids.memberId);
  if (owner !== undefined && owner.name !== "" && owner.name !== config.name) {
    throw new DataDirError(
      `data dir ${config.dataDir} belongs to member ${ids.memberId.toString(16)} named "${owner.name}" of cluster ${ids.clusterId.toString(16)}, not to --name "${config.name}"`,
    );
  }
  const raftStorage = new ServerRaftStorage();
  const applied = storage.store.consistentIndex();
  const firstRecords: WalRecord[] = walState.ids === undefined ? [metadataRecord(ids.memberId, ids.clusterId)] : [];
  if (applied > 0) {
    const confState = appliedConfState(backend);
    if (confState === undefined) throw new DataDirError(`data dir ${config.dataDir}: the backend has applied entries but no raft configuration`);
    const metadata = { index: applied, term: appliedTerm(backend), confState };
    raftStorage.applySnapshot({ data: new Uint8Array(0), metadata });
    // Marks where the log continues from, should the WAL end before it.
    firstRecords.push(snapshotRecord(metadata));
  }
  let entries = walState.entries.filter((entry) => entry.index > applied);
  // --force-new-cluster: what was not committed is dropped, as etcd drops it.
  if (config.forceNewCluster) entries = entries.filter((entry) => entry.index <= walState.hardState.commit);
  if (entries.length > 0 && entries[0]!.index !== applied + 1) {
    throw new DataDirError(`data dir ${config.dataDir}: the WAL misses entries ${applied + 1} to ${entries[0]!.index - 1} after the backend's applied index`);
  }
  raftStorage.append(entries);
  // Commit-only hard states are not written durably; what the backend applied
  // was committed. The backend may also be ahead of the WAL's last entry (an
  // installed snapshot): the log then starts empty after it.
  const hardState = walState.hardState;
  // A commit beyond the log's last entry is never trusted: it is learned again from the leader.
  const commit = Math.max(applied, Math.min(hardState.commit, raftStorage.lastIndex()));
  raftStorage.setHardState({ ...hardState, term: Math.max(hardState.term, appliedTerm(backend)), commit });
  if (config.forceNewCluster) forceNewCluster(storage, ids.memberId, raftStorage, firstRecords);
  return {
    ...ids,
    node: new RawNode(raftConfig(config, ids.memberId, raftStorage, applied)),
    raftStorage,
    firstRecords,
    initialPeers: storage.membership.list().filter((member) => member.id !== ids.memberId),
  };
}

/**
 * --force-new-cluster, as etcd does it: after the committed entries, the log
 * gets one committed entry removing each other member, so that this member,
 * applying them as it starts, becomes a cluster of one with all its data.
 * The entries go to the WAL first, with the hard state that commits them.
 */
function forceNewCluster(storage: MemberStorage, memberId: bigint, raftStorage: ServerRaftStorage, firstRecords: WalRecord[]): void {
  const lastIndex = raftStorage.lastIndex();
  const term = raftStorage.term(lastIndex);
  const others = new Set(storage.membership.list().map((member) => member.id).filter((id) => id !== memberId));
  // Members added by committed entries not yet applied are removed as well.
  const applied = storage.store.consistentIndex();
  const unapplied = lastIndex > applied ? raftStorage.entries(applied + 1, lastIndex + 1, Number.MAX_SAFE_INTEGER) : [];
  for (const entry of unapplied) {
    if (entry.type !== EntryType.EntryConfChange) continue;
    const change = decodeConfChange(entry.data);
    if (change.nodeId === memberId) continue;
    if (change.type === ConfChangeType.ConfChangeRemoveNode) others.delete(change.nodeId);
    else others.add(change.nodeId);
  }
  const removals: Entry[] = [...others].map((nodeId, position) => ({
    term,
    index: lastIndex + 1 + position,
    type: EntryType.EntryConfChange,
    data: encodeConfChange({ id: 0n, type: ConfChangeType.ConfChangeRemoveNode, nodeId, context: new Uint8Array(0) }),
  }));
  raftStorage.append(removals);
  const hardState: HardState = { ...raftStorage.hardStateSnapshot(), commit: lastIndex + removals.length };
  raftStorage.setHardState(hardState);
  firstRecords.push(...removals.map(entryRecord), hardStateRecord(hardState));
}
