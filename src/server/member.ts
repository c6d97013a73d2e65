import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { InternalRaftRequestSchema, RequestHeaderSchema, type InternalRaftRequest } from "../gen/etcdserverpb/raft_internal_pb.js";
import {
  AlarmRequest_AlarmAction as AlarmAction,
  AlarmRequestSchema,
  AlarmType,
  type AlarmRequest,
  type AlarmResponse,
  type CompactionRequest,
  type CompactionResponse,
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  type LeaseGrantRequest,
  type LeaseGrantResponse,
  type LeaseRevokeRequest,
  ResponseHeaderSchema,
  CompactionRequestSchema,
  type LeaseRevokeResponse,
  type PutRequest,
  type PutResponse,
  type RangeRequest,
  type RangeResponse,
  type TxnRequest,
  type TxnResponse,
} from "../gen/etcdserverpb/rpc_pb.js";
import { StoreError } from "../mvcc/errors.js";
import { PeerTransport } from "../transport/peer-transport.js";
import { EntryType, ErrProposalDropped, type ConfChange, type Entry, type Snapshot } from "../raft/index.js";
import { AutoCompactor } from "./auto-compactor.js";
import { LogCompactor } from "./log-compactor.js";
import { ClusterOps } from "./cluster-ops.js";
import { LeaseOps } from "./lease-ops.js";
import { installBackendSnapshot, type ServerRaftStorage } from "./snapshot.js";
import type { MemberStorage } from "./storage.js";
import { openStorage, storeAppliedTerm, storeIds } from "./storage.js";
import { existingIds, otherInitialPeerUrls, startRaft, type RaftStart } from "./bootstrap.js";
import { fetchRemoteCluster, servePeerEndpoint, type RemoteCluster } from "./peer-endpoints.js";
import { ConfChangeApplier, type ConfChangeResult } from "./conf-changes.js";
import { RaftNode } from "./raft-node.js";
import { Applier, toEtcdError, type ApplyResponse, type ApplyResult } from "./applier.js";
import type { ServerConfig } from "./config.js";
import * as errors from "./errors.js";
import { IdGenerator } from "./ids.js";
import type { Logger } from "./logger.js";
import { AuthApplier } from "./auth-applier.js";
import { SimpleTokens } from "../auth/simple-tokens.js";
import { JwtTokens } from "../auth/jwt-tokens.js";
import type { AuthInfo, AuthStore } from "../auth/auth-store.js";
import { executeRange } from "./range.js";
import { isTxnReadOnly, isTxnSerializable, compareToPath, executeAlongPath } from "./txn.js";
import { quotaCost } from "./quota.js";
import { V2Keys, type V2Outcome } from "./v2-keys.js";
import type { Request as V2Request } from "../gen/etcdserverpb/etcdserver_pb.js";

/** The etcd release whose behaviour this member matches, as Status reports it. */
export const etcdVersion = "3.4.23";
export const clusterVersion = "3.4.0";

function raftRequest(init: MessageInitShape<typeof InternalRaftRequestSchema>): InternalRaftRequest {
  return create(InternalRaftRequestSchema, init);
}

/** How often the member looks for leases that ran out. */
const leaseExpiryCheckMs = 500;
/** How often proposals past their deadline are answered with a timeout. */
const deadlineCheckMs = 100;
/** How long a new member with an empty data dir waits for a peer to say whether it was bootstrapped before. */
const newMemberCheckMs = 1000;
/** How often the leader proposes a SYNC entry that expires v2 nodes, as etcd does. */
const v2SyncMs = 500;
/** etcd refuses new proposals when applying lags committing by more than this. */
const maxAppliedLag = 5000;

interface Waiter {
  resolve: (result: ApplyResult) => void;
  deadlineMs: number;
  /** The leader when the request was proposed, to tell a timeout caused by a leader change. */
  leader: bigint;
  /** Set while the proposal waits for a leader to take it: hands it to raft again. */
  retry?: () => void;
}

/**
 * One member: takes client requests, proposes writes through raft, applies
 * committed entries to the store and answers each request when its own entry
 * has been applied. Reads are served from the local store, after a ReadIndex
 * round unless serializable.
 */
export class EtcdServer {
  readonly memberId: bigint;
  readonly clusterId: bigint;
  private readonly storage: MemberStorage;
  private readonly applier: Applier;
  /** Simple tokens, assigned by applying Authenticate entries. */
  readonly authTokens: SimpleTokens;
  /** With --auth-token jwt: signs and checks tokens (then no simple token is assigned). */
  jwtTokens: JwtTokens | undefined;
  private readonly authApplier: AuthApplier;
  readonly raft: RaftNode;
  /** The peer transport; the metrics read its counts. */
  readonly transport: PeerTransport;
  private readonly ids: IdGenerator;
  private readonly waiters = new Map<bigint, Waiter>();
  /** Proposals that found no leader, retried when one is elected. */
  private readonly blocked = new Set<bigint>();
  private applyWaiters: Array<{ index: number; resolve: () => void; reject: (error: Error) => void }> = [];
  appliedIndex: number;
  private failure: Error | undefined;

  /** True once the member stopped taking requests (closed, removed, or a storage failure). */
  get stopped(): boolean {
    return this.failure !== undefined;
  }
  private timers: NodeJS.Timeout[] = [];
  readonly requestTimeoutMs: number;
  private readonly confChanges: ConfChangeApplier;
  private readonly compactor: LogCompactor;
  /** Resolves once this member's removal from the cluster is applied: it should then stop. */
  readonly removed: Promise<void>;
  private markRemoved: () => void = () => {};
  /** Membership changes and leadership transfer, as the Cluster and Maintenance services ask for them. */
  readonly cluster: ClusterOps;
  /** Lease keep-alive, time-to-live and expiry, which the leader runs. */
  readonly leases: LeaseOps;
  private appliedSinceCompaction = 0;
  private readonly raftStorage: ServerRaftStorage;
  /** Counted for the metrics, which read them when scraped. */
  readonly counters = { leaderChanges: 0, proposalsFailed: 0 };
  /** The v2 keys store (served with --enable-v2). */
  readonly v2: V2Keys;
  /** --auto-compaction-*: runs on every member, resumed on the leader only. */
  private readonly autoCompactor: AutoCompactor | undefined;

  private constructor(
    readonly config: ServerConfig,
    readonly logger: Logger,
    storage: MemberStorage,
    start: RaftStart,
    transport: PeerTransport,
  ) {
    this.storage = storage;
    this.raftStorage = start.raftStorage;
    this.memberId = start.memberId;
    this.clusterId = start.clusterId;
    this.transport = transport;
    // etcd's minimum lease TTL: one and a half election timeouts, in whole ticks, rounded up to seconds.
    const electionTicks = Math.floor(config.electionTimeoutMs / config.heartbeatIntervalMs);
    const minLeaseTtlSeconds = Math.ceil((Math.floor((3 * electionTicks) / 2) * config.heartbeatIntervalMs) / 1000);
    this.authTokens = new SimpleTokens(config.authTokenTtlSeconds * 1000);
    this.authApplier = new AuthApplier(storage.auth, storage.lessor, this.authTokens);
    this.applier = new Applier(storage.store, storage.lessor, storage.alarms, minLeaseTtlSeconds, this.authApplier);
    this.v2 = new V2Keys(storage.backend);
    this.ids = new IdGenerator(this.memberId, Date.now());
    this.appliedIndex = storage.store.consistentIndex();
    this.requestTimeoutMs = 5000 + 2 * config.electionTimeoutMs;
    if (config.autoCompactionRetention > 0) {
      const target = { revision: () => this.store.currentRevision, compact: (revision: number) => this.compact(create(CompactionRequestSchema, { revision: BigInt(revision) })) };
      this.autoCompactor = new AutoCompactor(config.autoCompactionMode, config.autoCompactionRetention, target, logger);
      this.autoCompactor.start();
    }
    this.raft = new RaftNode({
      id: this.memberId,
      node: start.node,
      storage: start.raftStorage,
      wal: storage.wal,
      transport,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      requestTimeoutMs: this.requestTimeoutMs,
      apply: (entries) => this.apply(entries),
      installSnapshot: (snapshot) => this.installSnapshot(snapshot),
      onLeaderChange: (leader, isLeader) => this.leaderChanged(leader, isLeader),
      onFailure: (error) => this.fail(error),
    });
    start.raftStorage.setSnapshotSource(storage.backend, (error) => this.fail(error));
    this.removed = new Promise((resolve) => (this.markRemoved = resolve));
    // A follower removed while cut off never applies its own removal: the peers' 410 tells it.
    transport.onRemoved(() => this.removedFromCluster());
    this.cluster = new ClusterOps(this);
    this.leases = new LeaseOps(this);
    this.compactor = new LogCompactor(storage.wal, storage.backend, this.raft, start.raftStorage, start, config.maxWals);
    this.confChanges = new ConfChangeApplier(this.memberId, storage.membership, storage.backend, transport, this.raft, logger);
  }

  /**
   * Opens the data directory, starts raft (a new cluster, or a restart from the
   * WAL), connects to the other members, and resolves once this member has
   * published itself through the log: from then on it serves.
   */
  static async start(config: ServerConfig, logger: Logger): Promise<EtcdServer> {
    const storage = openStorage(config);
    let start: RaftStart;
    try {
      start = startRaft(config, storage, await askRunningCluster(config, storage));
    } catch (error) {
      await storage.wal.close();
      await storage.backend.close();
      throw error;
    }
    if (start.firstRecords.length > 0) await storage.wal.append(start.firstRecords);
    if (storage.backendIds === undefined) storage.backend.write(() => storeIds(storage.backend, start.memberId, start.clusterId));
    const transport = new PeerTransport({
      memberId: start.memberId,
      clusterId: start.clusterId,
      listenUrls: config.listenPeerUrls.map((url) => url.origin.replace("//localhost:", "//127.0.0.1:")),
      logger,
      tls: config.peerTls,
    });
    let server: EtcdServer | undefined;
    transport.onOtherRequest((stream, headers) =>
      servePeerEndpoint(stream, headers, {
        clusterId: start.clusterId,
        members: () => storage.membership.list(),
        leaderOperations: {
          promote: (id) => (server === undefined ? Promise.reject(errors.ErrNotLeader) : server.cluster.promote(id)),
          "lease-renew": (id) => (server === undefined ? Promise.reject(errors.ErrNotLeader) : server.leases.renewHere(id).then((ttl) => ({ ttl }))),
          "lease-ttl": (id) => (server === undefined ? Promise.reject(errors.ErrNotLeader) : server.leases.remainingHere(id)),
        },
      }),
    );
    await transport.start();
    for (const peer of start.initialPeers) transport.addPeer(peer.id, peer.peerUrls);
    server = new EtcdServer(config, logger, storage, start, transport);
    if (config.authJwt !== undefined) server.jwtTokens = await JwtTokens.load(config.authJwt);
    server.raft.schedule();
    // A lone voter need not wait an election timeout to lead; raft refuses to
    // campaign while committed conf changes (a new cluster's) are unapplied.
    const confState = start.node.status().confState;
    if (confState.voters.length === 1 && confState.voters[0] === start.memberId) {
      await server.applied(server.raft.commitIndex);
      server.raft.campaign();
    }
    server.timers.push(setInterval(() => server.leases.revokeExpired(leaseExpiryCheckMs), leaseExpiryCheckMs));
    server.timers.push(setInterval(() => server.expireWaiters(), deadlineCheckMs));
    server.timers.push(setInterval(() => server.syncV2(), v2SyncMs));
    if (config.leaseCheckpointEnabled) {
      server.timers.push(setInterval(() => server.leases.proposeCheckpoints(storage.lessor.checkpoints()), config.leaseCheckpointIntervalMs));
    }
    for (const timer of server.timers) timer.unref();
    await server.publish();
    return server;
  }

  /** Publishes this member's name and client URLs through the log, retrying until applied. */
  private async publish(): Promise<void> {
    const request = raftRequest({
      clusterMemberAttrSet: { memberID: this.memberId, memberAttributes: { name: this.config.name, clientUrls: this.config.advertiseClientUrls } },
    });
    for (;;) {
      if (this.failure !== undefined) throw this.failure;
      try {
        await this.propose(request);
        return;
      } catch (error) {
        if (error === errors.ErrStopped) throw error;
        this.logger.warn("failed to publish local member to cluster through raft", { error: String(error) });
      }
    }
  }

  get term(): number {
    return this.raft.term;
  }

  get store() {
    return this.storage.store;
  }

  /** Proposals waiting for their entry to be applied. */
  get pendingProposals(): number {
    return this.waiters.size;
  }

  get wal() {
    return this.storage.wal;
  }

  /** Users, roles and permissions (etcd's auth store). */
  get authStore(): AuthStore {
    return this.storage.auth;
  }

  get backend() {
    return this.storage.backend;
  }

  get lessor() {
    return this.storage.lessor;
  }

  get alarms() {
    return this.storage.alarms;
  }

  get leaderId(): bigint {
    return this.raft.leaderId;
  }

  get commitIndex(): number {
    return this.raft.commitIndex;
  }

  get membership() {
    return this.storage.membership;
  }

  /** Whether this member is a learner (it receives the log but does not vote, and serves only serializable reads). */
  get isLearner(): boolean {
    return this.storage.membership.get(this.memberId)?.isLearner ?? false;
  }

  /** The leader's heartbeat round trips to a follower, for /v2/stats/leader. */
  peerLatency(id: bigint) {
    return this.raft.followerLatency.of(id);
  }

  /** Since when (performance.now()) the message stream to a peer has been open; undefined while it is not. */
  peerActiveSince(id: bigint): number | undefined {
    return this.transport.peerStatus(id)?.activeSinceMs;
  }

  /** `auth`: who asks, for the permission checks when auth is on (etcd's AuthInfo); none for the member's own requests. */
  async range(request: RangeRequest, auth?: AuthInfo): Promise<RangeResponse> {
    if (!request.serializable) await this.linearizableRead();
    this.storage.auth.checkKeys(auth, "read", request.key, request.rangeEnd);
    return this.withStoreErrors(() => executeRange(this.store, request));
  }

  put(request: PutRequest, auth?: AuthInfo): Promise<PutResponse> {
    return this.proposeChecked(raftRequest({ put: request }), auth) as Promise<PutResponse>;
  }

  deleteRange(request: DeleteRangeRequest, auth?: AuthInfo): Promise<DeleteRangeResponse> {
    return this.propose(raftRequest({ deleteRange: request }), auth) as Promise<DeleteRangeResponse>;
  }

  async txn(request: TxnRequest, auth?: AuthInfo): Promise<TxnResponse> {
    if (isTxnReadOnly(request)) {
      if (!isTxnSerializable(request)) await this.linearizableRead();
      if (this.storage.auth.isEnabled) this.authApplier.checkTxn(auth ?? { username: "", revision: 0 }, request);
      return this.withStoreErrors(() => this.readOnlyTxn(request));
    }
    return this.proposeChecked(raftRequest({ txn: request }), auth) as Promise<TxnResponse>;
  }

  async compact(request: CompactionRequest, auth?: AuthInfo): Promise<CompactionResponse> {
    const result = await this.proposeForResult(raftRequest({ compaction: request }), auth);
    if (request.physical && result.physical !== undefined) await result.physical;
    return this.unwrap(result) as CompactionResponse;
  }

  leaseGrant(request: LeaseGrantRequest): Promise<LeaseGrantResponse> {
    while (request.ID === 0n) request.ID = this.ids.generate() & ((1n << 63n) - 1n);
    return this.proposeChecked(raftRequest({ leaseGrant: request })) as Promise<LeaseGrantResponse>;
  }

  leaseRevoke(request: LeaseRevokeRequest, auth?: AuthInfo): Promise<LeaseRevokeResponse> {
    return this.propose(raftRequest({ leaseRevoke: request }), auth) as Promise<LeaseRevokeResponse>;
  }

  /** Proposes a v2 keys request; resolves once applied here with its event or v2 error, and the entry's raft index. */
  async proposeV2(request: V2Request): Promise<V2Outcome> {
    const result = await this.proposeForResult(raftRequest({ v2: request }));
    if (result.error !== undefined) throw result.error;
    return result.v2!;
  }

  /** On the leader: expires v2 nodes whose time has come, through the log. */
  private syncV2(): void {
    if (this.raft.leaderId !== this.memberId || this.failure !== undefined) return;
    const request = this.v2.syncRequest(Date.now());
    if (request !== undefined) void this.proposeForResult(raftRequest({ v2: request })).catch(() => undefined);
  }

  alarm(request: AlarmRequest, auth?: AuthInfo): Promise<AlarmResponse> {
    return this.propose(raftRequest({ alarm: request }), auth) as Promise<AlarmResponse>;
  }

  /** Waits until every write acknowledged before the call is visible locally. */
  async linearizableRead(): Promise<void> {
    if (this.isLearner) throw errors.ErrNotSupportedForLearner;
    await this.confirmLeader();
  }

  /** A ReadIndex round: resolves once this member has applied what the leader had committed when it was asked (learners too). */
  async confirmLeader(): Promise<void> {
    if (this.failure !== undefined) throw errors.ErrStopped;
    const index = await this.raft.readIndex();
    await this.applied(index);
  }

  /** Resolves once entries up to `index` are applied here. */
  applied(index: number): Promise<void> {
    if (this.appliedIndex >= index) return Promise.resolve();
    if (this.failure !== undefined) return Promise.reject(errors.ErrStopped);
    return new Promise((resolve, reject) => {
      this.applyWaiters.push({ index, resolve, reject });
    });
  }

  private readOnlyTxn(request: TxnRequest): TxnResponse {
    const path = compareToPath(this.store, request);
    const response = executeAlongPath(
      request,
      path,
      (op) => {
        if (op.request.case !== "requestRange") throw new Error("write in a read-only txn");
        return { case: "responseRange", value: executeRange(this.store, op.request.value) };
      },
      false,
    ).response;
    response.header = create(ResponseHeaderSchema, { revision: BigInt(this.store.currentRevision) });
    return response;
  }

  private withStoreErrors<T>(body: () => T): T {
    try {
      return body();
    } catch (error) {
      if (error instanceof StoreError) throw toEtcdError(error);
      throw error;
    }
  }

  /** Proposes a request that adds data: refused, and the NOSPACE alarm raised, past the backend quota. */
  private async proposeChecked(request: InternalRaftRequest, auth?: AuthInfo): Promise<ApplyResponse> {
    const costBytes = quotaCost(request);
    // Measured against the file, as etcd measures it: compaction frees pages
    // inside it, and a defragmentation gives them back.
    const sizeBytes = this.backend.sizeBytes();
    if (costBytes > 0 && sizeBytes + costBytes >= this.config.quotaBackendBytes) {
      if (!this.alarms.has(AlarmType.NOSPACE)) {
        const activate = create(AlarmRequestSchema, { action: AlarmAction.ACTIVATE, memberID: this.memberId, alarm: AlarmType.NOSPACE });
        this.logger.warn("alarm raised", { alarm: "NOSPACE", "backend-size-bytes": sizeBytes, "quota-size-bytes": this.config.quotaBackendBytes });
        void this.propose(raftRequest({ alarm: activate })).catch(() => undefined);
      }
      throw errors.ErrNoSpace;
    }
    return this.propose(request, auth);
  }

  /** Proposes a request through the log and resolves with its response once applied here; `auth` as for range. */
  async propose(request: InternalRaftRequest, auth?: AuthInfo): Promise<ApplyResponse> {
    return this.unwrap(await this.proposeForResult(request, auth));
  }

  /** Like `propose`, with the whole result of the apply. */
  proposeForResult(request: InternalRaftRequest, auth?: AuthInfo): Promise<ApplyResult> {
    if (this.failure !== undefined) return Promise.reject(errors.ErrStopped);
    if (this.raft.commitIndex > this.appliedIndex + maxAppliedLag) return Promise.reject(errors.ErrTooManyRequests);
    const id = this.ids.generate();
    request.header = create(RequestHeaderSchema, { ID: id, username: auth?.username ?? "", authRevision: BigInt(auth?.revision ?? 0) });
    const data = toBinary(InternalRaftRequestSchema, request);
    if (data.length > this.config.maxRequestBytes) return Promise.reject(errors.ErrRequestTooLarge);
    return this.waitFor(id, () => this.raft.propose(data));
  }

  /** Proposes a membership change; resolves once it is applied, or with the error it was refused with when applied. */
  async proposeConfChange(change: ConfChange): Promise<void> {
    if (this.failure !== undefined) throw errors.ErrStopped;
    change.id = this.ids.generate();
    const result = await this.waitFor(change.id, () => this.raft.proposeConfChange(change));
    if (result.error !== undefined) throw result.error;
  }

  /** Registers a waiter for proposal `id`, then hands the proposal to raft. */
  private waitFor(id: bigint, propose: () => void): Promise<ApplyResult> {
    return new Promise<ApplyResult>((resolve) => {
      const waiter: Waiter = { resolve, deadlineMs: performance.now() + this.requestTimeoutMs, leader: this.raft.leaderId };
      this.waiters.set(id, waiter);
      this.submit(id, waiter, propose);
    });
  }

  /** Hands a proposal to raft, or keeps it until there is a leader to take it. */
  private submit(id: bigint, waiter: Waiter, propose: () => void): void {
    try {
      propose();
      waiter.retry = undefined;
      this.blocked.delete(id);
    } catch (error) {
      if (error !== ErrProposalDropped) throw error;
      waiter.retry = propose;
      this.blocked.add(id);
    }
  }

  /** Answers proposals that outlived the request timeout, as etcd does. */
  private expireWaiters(): void {
    // Proposals dropped while a leadership transfer ran are retried once a leader takes them again.
    if (this.raft.leaderId !== 0n) this.retryBlocked();
    const now = performance.now();
    // Every proposal gets the same timeout, so deadlines follow insertion order.
    for (const [id, waiter] of this.waiters) {
      if (waiter.deadlineMs > now) break;
      this.waiters.delete(id);
      this.blocked.delete(id);
      this.counters.proposalsFailed++;
      waiter.resolve({ error: this.timeoutError(waiter) });
    }
  }

  /** etcd's answer for a proposal that ran out of time, by what it was waiting for. */
  private timeoutError(waiter: Waiter): errors.EtcdError {
    if (waiter.retry !== undefined) return errors.ErrProposalDeadline;
    return waiter.leader !== this.raft.leaderId ? errors.ErrTimeoutDueToLeaderFail : errors.ErrTimeout;
  }

  private leaderChanged(leader: bigint, isLeader: boolean): void {
    this.logger.info(leader === 0n ? "raft.node lost leader" : "raft.node elected leader", {
      "local-member-id": this.memberId.toString(16),
      leader: leader.toString(16),
      term: this.raft.term,
    });
    if (leader !== 0n) this.counters.leaderChanges++;
    // Only the leader expires leases; a new leader gives each its full TTL again.
    if (isLeader) this.storage.lessor.promote();
    else this.storage.lessor.demote();
    // Only the leader compacts on its own, as etcd's leader does.
    if (isLeader) this.autoCompactor?.resume();
    else this.autoCompactor?.pause();
    if (leader !== 0n) this.retryBlocked();
  }

  private retryBlocked(): void {
    for (const id of [...this.blocked]) {
      const waiter = this.waiters.get(id);
      if (waiter?.retry !== undefined) this.submit(id, waiter, waiter.retry);
    }
  }

  private unwrap(result: ApplyResult): ApplyResponse {
    if (result.error !== undefined) throw result.error;
    return result.response!;
  }

  /**
   * Applies committed entries in one backend transaction, then answers their
   * waiters. Conf changes take effect in raft and in the membership together.
   */
  private apply(entries: Entry[]): void {
    const results: Array<[bigint, ApplyResult | ConfChangeResult]> = [];
    this.backend.write(() => this.applyInTransaction(entries, results));
    this.answer(entries, results);
  }

  private applyInTransaction(entries: Entry[], results: Array<[bigint, ApplyResult | ConfChangeResult]>): void {
    for (const entry of entries) {
      if (entry.index <= this.appliedIndex) continue;
      if (entry.type === EntryType.EntryNormal) {
        if (entry.data.length > 0) {
          const request = fromBinary(InternalRaftRequestSchema, entry.data);
          const result =
            request.clusterMemberAttrSet !== undefined
              ? this.confChanges.setAttributes(request.clusterMemberAttrSet)
              : request.v2 !== undefined
                ? { v2: this.v2.apply(request.v2, entry.index) }
                : this.applier.apply(request, entry.index);
          const id = request.header?.ID ?? 0n;
          if (this.waiters.has(id)) results.push([id, result]);
        }
      } else {
        const outcome = this.confChanges.apply(entry);
        if (this.waiters.has(outcome.id)) results.push([outcome.id, outcome.result]);
      }
      this.storage.store.setConsistentIndex(entry.index);
      this.appliedIndex = entry.index;
    }
    const last = entries[entries.length - 1];
    if (last !== undefined) storeAppliedTerm(this.backend, last.term);
    this.v2.persist();
  }

  /** Answers the waiters of applied entries, then compacts the log when --snapshot-count entries were applied since the last time. */
  private answer(entries: Entry[], results: Array<[bigint, ApplyResult | ConfChangeResult]>): void {
    for (const [id, result] of results) {
      this.waiters.get(id)?.resolve(result as ApplyResult);
      this.waiters.delete(id);
    }
    this.resolveApplyWaiters();
    this.appliedSinceCompaction += entries.length;
    if (this.appliedSinceCompaction >= this.config.snapshotCount) {
      this.appliedSinceCompaction = 0;
      this.compactor.compact(this.appliedIndex).catch((error: unknown) => this.fail(error as Error));
    }
    if (this.confChanges.removedSelf) this.removedFromCluster();
  }

  /** Replaces the state machine with the leader's snapshot: the backend, then everything kept in memory from it. */
  private async installSnapshot(snapshot: Snapshot): Promise<void> {
    this.logger.info("applying snapshot", { "snapshot-index": snapshot.metadata.index, "snapshot-size-bytes": snapshot.data.length });
    this.backend.write(() => installBackendSnapshot(this.backend, snapshot.data));
    await this.backend.flushed();
    this.storage.lessor.reload();
    this.store.reload();
    this.storage.membership.reload();
    this.storage.alarms.reload();
    this.storage.auth.reload();
    this.v2.reload();
    this.appliedIndex = snapshot.metadata.index;
    this.confChanges.syncPeers();
    this.resolveApplyWaiters();
    this.logger.info("applied snapshot", { "snapshot-index": snapshot.metadata.index });
  }

  private resolveApplyWaiters(): void {
    if (this.applyWaiters.length === 0) return;
    const ready = this.applyWaiters.filter((waiter) => waiter.index <= this.appliedIndex);
    this.applyWaiters = this.applyWaiters.filter((waiter) => waiter.index > this.appliedIndex);
    for (const waiter of ready) waiter.resolve();
  }

  private removedFromCluster(): void {
    if (this.failure !== undefined) return;
    this.logger.warn("the member has been permanently removed from the cluster");
    this.stopAccepting(new Error("the member has been permanently removed from the cluster"));
    this.markRemoved();
  }

  private fail(error: Error): void {
    if (this.failure !== undefined) return;
    this.logger.error("member stops accepting writes", { error: error.message });
    this.stopAccepting(error);
  }

  private stopAccepting(reason: Error): void {
    this.failure ??= reason;
    for (const waiter of this.waiters.values()) waiter.resolve({ error: errors.ErrStopped });
    this.waiters.clear();
    for (const waiter of this.applyWaiters.splice(0)) waiter.reject(errors.ErrStopped);
  }

  async close(): Promise<void> {
    this.autoCompactor?.stop();
    for (const timer of this.timers) clearInterval(timer);
    await this.raft.stop();
    await this.raftStorage.close();
    this.stopAccepting(errors.ErrStopped);
    await this.store.compactionsDone();
    await this.storage.wal.close();
    await this.backend.close();
  }
}

/**
 * What the other members of --initial-cluster say of their cluster, for a
 * member whose data dir is empty: a joining member needs it; a new one only
 * checks that it was not bootstrapped before (etcd gives it one second).
 */
async function askRunningCluster(config: ServerConfig, storage: MemberStorage): Promise<RemoteCluster | undefined> {
  if (existingIds(storage) !== undefined) return undefined;
  const urls = otherInitialPeerUrls(config);
  if (config.initialClusterState === "existing") return fetchRemoteCluster(urls, config.electionTimeoutMs * 5, config.peerTls);
  return urls.length === 0 ? undefined : fetchRemoteCluster(urls, newMemberCheckMs, config.peerTls).catch(() => undefined);
}
