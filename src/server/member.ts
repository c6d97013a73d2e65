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
  type LeaseTimeToLiveRequest,
  type LeaseTimeToLiveResponse,
  LeaseCheckpointRequestSchema,
  LeaseRevokeRequestSchema,
  LeaseTimeToLiveResponseSchema,
  ResponseHeaderSchema,
  type LeaseRevokeResponse,
  type PutRequest,
  type PutResponse,
  type RangeRequest,
  type RangeResponse,
  type TxnRequest,
  type TxnResponse,
} from "../gen/etcdserverpb/rpc_pb.js";
import { leaseLimits } from "../lease/lessor.js";
import { StoreError } from "../mvcc/errors.js";
import { keyToBytes } from "../mvcc/keys.js";
import type { MemberStorage } from "./storage.js";
import { openStorage, startRecords } from "./storage.js";
import { Applier, toEtcdError, type ApplyResponse, type ApplyResult } from "./applier.js";
import type { ServerConfig } from "./config.js";
import * as errors from "./errors.js";
import { IdGenerator } from "./ids.js";
import type { Logger } from "./logger.js";
import { executeRange } from "./range.js";
import type { LogEntry } from "./replicated-log.js";
import { SingleMemberLog } from "./single-member-log.js";
import { isTxnReadOnly, isTxnSerializable, compareToPath, executeAlongPath } from "./txn.js";
import { quotaCost } from "./quota.js";

/** The etcd release whose behaviour this member matches, as Status reports it. */
export const etcdVersion = "3.4.23";
export const clusterVersion = "3.4.0";

function raftRequest(init: MessageInitShape<typeof InternalRaftRequestSchema>): InternalRaftRequest {
  return create(InternalRaftRequestSchema, init);
}

/** How often the member looks for leases that ran out. */
const leaseExpiryCheckMs = 500;

interface Waiter {
  resolve: (result: ApplyResult) => void;
}

/**
 * One member: takes client requests, proposes writes to the log, applies
 * committed entries to the store and answers each request when its own entry
 * has been applied. Reads are served from the local store.
 */
export class EtcdServer {
  readonly memberId: bigint;
  readonly clusterId: bigint;
  private readonly storage: MemberStorage;
  private readonly applier: Applier;
  private readonly log: SingleMemberLog;
  private readonly ids: IdGenerator;
  private readonly waiters = new Map<bigint, Waiter>();
  appliedIndex: number;
  private failure: Error | undefined;
  private appliedSinceSnapshot = 0;
  private expiryTimer: NodeJS.Timeout | undefined;
  private checkpointTimer: NodeJS.Timeout | undefined;
  private purging = false;

  private constructor(
    readonly config: ServerConfig,
    private readonly logger: Logger,
    storage: MemberStorage,
  ) {
    this.storage = storage;
    this.memberId = storage.memberId;
    this.clusterId = storage.clusterId;
    // etcd's minimum lease TTL: one and a half election timeouts, in whole ticks, rounded up to seconds.
    const electionTicks = Math.floor(config.electionTimeoutMs / config.heartbeatIntervalMs);
    const minLeaseTtlSeconds = Math.ceil((Math.floor((3 * electionTicks) / 2) * config.heartbeatIntervalMs) / 1000);
    this.applier = new Applier(storage.store, storage.lessor, storage.alarms, minLeaseTtlSeconds);
    this.ids = new IdGenerator(this.memberId, Date.now());
    this.appliedIndex = storage.store.consistentIndex();
    this.log = new SingleMemberLog(storage.wal, storage.term, this.memberId, storage.lastIndex, (entries) => this.apply(entries), (error) => this.fail(error));
  }

  /** Opens the data directory, replays what the backend has not applied, and is ready to serve. */
  static async start(config: ServerConfig, logger: Logger): Promise<EtcdServer> {
    const storage = openStorage(config);
    await storage.wal.append(storage.startRecords);
    const server = new EtcdServer(config, logger, storage);
    if (storage.unapplied.length > 0) {
      logger.info("replaying WAL entries", { from: storage.unapplied[0]!.index, to: storage.unapplied[storage.unapplied.length - 1]!.index });
      server.apply(storage.unapplied);
    }
    // A single member leads from the start: it gives every lease its full TTL, then expires them.
    storage.lessor.promote();
    server.expiryTimer = setInterval(() => server.revokeExpiredLeases(), leaseExpiryCheckMs);
    server.expiryTimer.unref();
    if (config.leaseCheckpointEnabled) {
      server.checkpointTimer = setInterval(() => server.proposeCheckpoints(storage.lessor.checkpoints()), config.leaseCheckpointIntervalMs);
      server.checkpointTimer.unref();
    }
    return server;
  }

  /** Proposes the revoke of leases that ran out, at most etcd's rate of revokes per second. */
  private revokeExpiredLeases(): void {
    if (this.failure !== undefined) return;
    const expired = this.storage.lessor.takeExpired(Math.ceil((leaseLimits.revokesPerSecondMax * leaseExpiryCheckMs) / 1000));
    for (const lease of expired) {
      this.leaseRevoke(create(LeaseRevokeRequestSchema, { ID: lease.id })).catch((error: unknown) => {
        if (error !== errors.ErrLeaseNotFound) this.logger.warn("failed to revoke an expired lease", { "lease-id": lease.id, error: String(error) });
      });
    }
  }

  /** Keeps a lease alive: its TTL in seconds, or 0 when it does not exist or has run out (what etcd answers). */
  leaseRenew(id: bigint): number {
    const renewed = this.storage.lessor.renew(id);
    if (renewed === undefined) return 0;
    // A kept-alive lease starts over: the remaining TTL on record no longer holds.
    if (renewed.checkpointed) this.proposeCheckpoints([{ id, remainingTtlSeconds: 0 }]);
    return renewed.ttlSeconds;
  }

  /** Records leases' remaining TTLs through the log, so that a new leader or a restart resumes them. */
  private proposeCheckpoints(checkpoints: Array<{ id: bigint; remainingTtlSeconds: number }>): void {
    for (let first = 0; first < checkpoints.length; first += leaseLimits.checkpointsPerRequestMax) {
      const batch = checkpoints.slice(first, first + leaseLimits.checkpointsPerRequestMax);
      const request = create(LeaseCheckpointRequestSchema, { checkpoints: batch.map((checkpoint) => ({ ID: checkpoint.id, remainingTTL: BigInt(checkpoint.remainingTtlSeconds) })) });
      this.propose(raftRequest({ leaseCheckpoint: request })).catch((error: unknown) => this.logger.warn("failed to checkpoint leases", { error: String(error) }));
    }
  }

  async leaseTimeToLive(request: LeaseTimeToLiveRequest): Promise<LeaseTimeToLiveResponse> {
    await this.linearizableRead();
    const lease = this.storage.lessor.get(request.ID);
    if (lease === undefined) return create(LeaseTimeToLiveResponseSchema, { header: create(ResponseHeaderSchema), ID: request.ID, TTL: -1n });
    const remaining = this.storage.lessor.remainingSeconds(lease);
    return create(LeaseTimeToLiveResponseSchema, {
      ID: lease.id,
      TTL: BigInt(remaining),
      grantedTTL: BigInt(lease.ttlSeconds),
      keys: request.keys ? [...lease.keys].sort().map((key) => keyToBytes(key)) : [],
    });
  }

  get term(): number {
    return this.log.term;
  }

  get store() {
    return this.storage.store;
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
    return this.log.leaderId;
  }

  get commitIndex(): number {
    return this.log.commitIndex;
  }

  async range(request: RangeRequest): Promise<RangeResponse> {
    if (!request.serializable) await this.linearizableRead();
    return this.withStoreErrors(() => executeRange(this.store, request));
  }

  put(request: PutRequest): Promise<PutResponse> {
    return this.proposeChecked(raftRequest({ put: request })) as Promise<PutResponse>;
  }

  deleteRange(request: DeleteRangeRequest): Promise<DeleteRangeResponse> {
    return this.propose(raftRequest({ deleteRange: request })) as Promise<DeleteRangeResponse>;
  }

  async txn(request: TxnRequest): Promise<TxnResponse> {
    if (isTxnReadOnly(request)) {
      if (!isTxnSerializable(request)) await this.linearizableRead();
      return this.withStoreErrors(() => this.readOnlyTxn(request));
    }
    return this.proposeChecked(raftRequest({ txn: request })) as Promise<TxnResponse>;
  }

  async compact(request: CompactionRequest): Promise<CompactionResponse> {
    const result = await this.proposeForResult(raftRequest({ compaction: request }));
    if (request.physical && result.physical !== undefined) await result.physical;
    return this.unwrap(result) as CompactionResponse;
  }

  leaseGrant(request: LeaseGrantRequest): Promise<LeaseGrantResponse> {
    while (request.ID === 0n) request.ID = this.ids.generate() & ((1n << 63n) - 1n);
    return this.proposeChecked(raftRequest({ leaseGrant: request })) as Promise<LeaseGrantResponse>;
  }

  leaseRevoke(request: LeaseRevokeRequest): Promise<LeaseRevokeResponse> {
    return this.propose(raftRequest({ leaseRevoke: request })) as Promise<LeaseRevokeResponse>;
  }

  alarm(request: AlarmRequest): Promise<AlarmResponse> {
    return this.propose(raftRequest({ alarm: request })) as Promise<AlarmResponse>;
  }

  /** Waits until every write acknowledged before the call is visible locally. */
  async linearizableRead(): Promise<void> {
    const index = await this.log.readIndex();
    while (this.appliedIndex < index) await new Promise((resolve) => setImmediate(resolve));
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
  private async proposeChecked(request: InternalRaftRequest): Promise<ApplyResponse> {
    const costBytes = quotaCost(request);
    // Measured in pages in use, which compaction frees: with no defragmentation
    // yet, the file itself never shrinks, and a quota on it could never be met again.
    const sizeBytes = this.backend.sizeInUseBytes();
    if (costBytes > 0 && sizeBytes + costBytes >= this.config.quotaBackendBytes) {
      if (!this.alarms.has(AlarmType.NOSPACE)) {
        const activate = create(AlarmRequestSchema, { action: AlarmAction.ACTIVATE, memberID: this.memberId, alarm: AlarmType.NOSPACE });
        this.logger.warn("alarm raised", { alarm: "NOSPACE", "backend-size-bytes": sizeBytes, "quota-size-bytes": this.config.quotaBackendBytes });
        void this.propose(raftRequest({ alarm: activate })).catch(() => undefined);
      }
      throw errors.ErrNoSpace;
    }
    return this.propose(request);
  }

  private async propose(request: InternalRaftRequest): Promise<ApplyResponse> {
    return this.unwrap(await this.proposeForResult(request));
  }

  private proposeForResult(request: InternalRaftRequest): Promise<ApplyResult> {
    if (this.failure !== undefined) return Promise.reject(errors.ErrStopped);
    const id = this.ids.generate();
    request.header = create(RequestHeaderSchema, { ID: id });
    const data = toBinary(InternalRaftRequestSchema, request);
    if (data.length > this.config.maxRequestBytes) return Promise.reject(errors.ErrRequestTooLarge);
    return new Promise<ApplyResult>((resolve) => {
      this.waiters.set(id, { resolve });
      this.log.propose(data);
    });
  }

  private unwrap(result: ApplyResult): ApplyResponse {
    if (result.error !== undefined) throw result.error;
    return result.response!;
  }

  /** Applies committed entries in one backend transaction, then answers their waiters. */
  private apply(entries: LogEntry[]): void {
    const results: Array<[bigint, ApplyResult]> = [];
    this.backend.write(() => {
      for (const entry of entries) {
        if (entry.index <= this.appliedIndex) continue;
        const request = fromBinary(InternalRaftRequestSchema, entry.data);
        const result = this.applier.apply(request);
        const id = request.header?.ID ?? 0n;
        if (this.waiters.has(id)) results.push([id, result]);
        this.storage.store.setConsistentIndex(entry.index);
        this.appliedIndex = entry.index;
      }
    });
    for (const [id, result] of results) {
      this.waiters.get(id)?.resolve(result);
      this.waiters.delete(id);
    }
    this.appliedSinceSnapshot += entries.length;
    if (this.appliedSinceSnapshot >= this.config.snapshotCount) void this.purgeWal();
  }

  /**
   * Once --snapshot-count entries are applied, the WAL is cut: a new segment is
   * started, and the older ones are deleted once every entry in them is applied
   * and the backend holding those effects is on disk.
   */
  private async purgeWal(): Promise<void> {
    if (this.purging) return;
    this.purging = true;
    this.appliedSinceSnapshot = 0;
    try {
      const sequence = await this.storage.wal.rotate(startRecords(this.memberId, this.clusterId, this.term));
      // Every entry in the older segments was proposed before the rotation.
      const lastInOldSegments = this.log.lastIndex;
      while (this.appliedIndex < lastInOldSegments && this.failure === undefined) await new Promise((resolve) => setImmediate(resolve));
      await this.backend.flushed();
      if (this.failure === undefined) this.storage.wal.purgeBefore(sequence);
    } catch (error) {
      this.fail(error as Error);
    } finally {
      this.purging = false;
    }
  }

  private fail(error: Error): void {
    // A storage failure is never swallowed: the member stops serving writes.
    this.failure = error;
    this.logger.error("storage failure; member stops accepting writes", { error: error.message });
    for (const waiter of this.waiters.values()) waiter.resolve({ error: errors.ErrStopped });
    this.waiters.clear();
  }

  async close(): Promise<void> {
    clearInterval(this.expiryTimer);
    clearInterval(this.checkpointTimer);
    await this.log.close();
    await this.store.compactionsDone();
    await this.storage.wal.close();
    await this.backend.close();
  }
}

