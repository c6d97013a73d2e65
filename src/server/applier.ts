import { create } from "@bufbuild/protobuf";
import {
  AlarmRequest_AlarmAction as AlarmAction,
  AlarmMemberSchema,
  AlarmResponseSchema,
  AlarmType,
  CompactionResponseSchema,
  DeleteRangeResponseSchema,
  LeaseCheckpointResponseSchema,
  LeaseGrantResponseSchema,
  LeaseRevokeResponseSchema,
  PutResponseSchema,
  ResponseHeaderSchema,
  type AlarmRequest,
  type AlarmResponse,
  type CompactionRequest,
  type CompactionResponse,
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  type LeaseCheckpointRequest,
  type LeaseCheckpointResponse,
  type LeaseGrantRequest,
  type LeaseGrantResponse,
  type LeaseRevokeRequest,
  type LeaseRevokeResponse,
  type PutRequest,
  type PutResponse,
  type RequestOp,
  type ResponseOp,
  type TxnRequest,
  type TxnResponse,
} from "../gen/etcdserverpb/rpc_pb.js";
import type { InternalRaftRequest } from "../gen/etcdserverpb/raft_internal_pb.js";
import { leaseLimits, type Lessor } from "../lease/lessor.js";
import { StoreError } from "../mvcc/errors.js";
import { keyToString, rangeEndToString } from "../mvcc/keys.js";
import type { KvStore, WriteTransaction } from "../mvcc/store.js";
import type { Alarms } from "./alarms.js";
import type { AuthApplied, AuthApplier, AuthApplyResponse } from "./auth-applier.js";
import * as errors from "./errors.js";
import { executeRange, toKeyValueMessage, type RangeView } from "./range.js";
import { checkAlongPath, compareToPath, executeAlongPath, isTxnReadOnly } from "./txn.js";

export type ApplyResponse = PutResponse | DeleteRangeResponse | TxnResponse | CompactionResponse | LeaseGrantResponse | LeaseRevokeResponse | LeaseCheckpointResponse | AlarmResponse | AuthApplyResponse;

export interface ApplyResult {
  response?: ApplyResponse;
  error?: errors.EtcdError;
  /** For an Authenticate entry: the user and auth revision a token is for. */
  authenticated?: AuthApplied["authenticated"];
  /** For a v2 keys request: its event or v2 error. */
  v2?: import("./v2-keys.js").V2Outcome;
  /** For a compaction: settles when its records have left the backend. */
  physical?: Promise<void>;
}

/**
 * Applies committed requests to the store. Deterministic: every member applies
 * the same entries to the same state with the same result. Each request either
 * happens whole or fails before it changes anything. Runs inside the backend
 * write transaction of its batch of entries.
 */
export class Applier {
  constructor(
    private readonly store: KvStore,
    private readonly lessor: Lessor,
    private readonly alarms: Alarms,
    private readonly minLeaseTtlSeconds: number,
    private readonly auth: AuthApplier,
  ) {}

  /** Applies one entry's request; `index` is the entry's. */
  apply(request: InternalRaftRequest, index: number): ApplyResult {
    try {
      this.auth.check(request);
      const applied = this.auth.apply(request, index);
      if (applied !== undefined) return applied;
      if (request.put !== undefined) return { response: this.standalone((txn) => this.put(txn, request.put!)) };
      if (request.deleteRange !== undefined) return { response: this.standalone((txn) => this.deleteRange(txn, request.deleteRange!)) };
      if (request.txn !== undefined) return { response: this.txn(request.txn) };
      if (request.compaction !== undefined) return this.compaction(request.compaction);
      if (request.leaseGrant !== undefined) return { response: this.leaseGrant(request.leaseGrant) };
      if (request.leaseRevoke !== undefined) return { response: this.leaseRevoke(request.leaseRevoke) };
      if (request.alarm !== undefined) return { response: this.alarm(request.alarm) };
      if (request.leaseCheckpoint !== undefined) return { response: this.leaseCheckpoint(request.leaseCheckpoint) };
      throw new Error("log entry with no request");
    } catch (error) {
      if (error instanceof errors.EtcdError) return { error };
      if (error instanceof StoreError) return { error: toEtcdError(error) };
      throw error;
    }
  }

  private get noSpace(): boolean {
    return this.alarms.has(AlarmType.NOSPACE);
  }

  private standalone<T>(body: (txn: WriteTransaction) => T): T {
    const txn = this.store.write();
    try {
      return body(txn);
    } finally {
      txn.end();
    }
  }

  private put(txn: WriteTransaction, request: PutRequest, checked = false): PutResponse {
    if (!checked) {
      if (this.noSpace) throw errors.ErrNoSpace;
      if (request.lease !== 0n && !this.lessor.exists(request.lease)) throw errors.ErrLeaseNotFound;
    }
    const key = keyToString(request.key);
    let value = request.value;
    let lease = request.lease;
    const response = create(PutResponseSchema);
    if (request.ignoreValue || request.ignoreLease || request.prevKv) {
      const previous = txn.range(key, undefined).kvs[0];
      if ((request.ignoreValue || request.ignoreLease) && previous === undefined) throw errors.ErrKeyNotFound;
      if (previous !== undefined) {
        if (request.ignoreValue) value = previous.value;
        if (request.ignoreLease) lease = previous.lease;
        if (request.prevKv) response.prevKv = toKeyValueMessage(previous);
      }
    }
    const revision = txn.put(key, value, lease);
    response.header = create(ResponseHeaderSchema, { revision: BigInt(revision) });
    return response;
  }

  private deleteRange(txn: WriteTransaction, request: DeleteRangeRequest): DeleteRangeResponse {
    const key = keyToString(request.key);
    const end = rangeEndToString(request.rangeEnd);
    const response = create(DeleteRangeResponseSchema);
    if (request.prevKv) response.prevKvs = txn.range(key, end).kvs.map((kv) => toKeyValueMessage(kv));
    const { deleted, revision } = txn.deleteRange(key, end);
    response.deleted = BigInt(deleted);
    response.header = create(ResponseHeaderSchema, { revision: BigInt(revision) });
    return response;
  }

  private txn(request: TxnRequest): TxnResponse {
    const readOnly = isTxnReadOnly(request);
    if (!readOnly && this.noSpace && hasPut(request)) throw errors.ErrNoSpace;
    const view: RangeView = this.store;
    const path = compareToPath(view, request);
    if (!readOnly) {
      const existence = new KeyExistence(this.store);
      checkAlongPath(request, path, (op) => this.checkWrite(op, existence));
    }
    checkAlongPath(request, path, (op) => this.checkRange(op));
    const txn = this.store.write();
    let response: TxnResponse;
    try {
      response = executeAlongPath(request, path, (op) => this.executeOp(txn, op), false).response;
    } catch (error) {
      // The checks above make every operation succeed; anything else would leave half a transaction behind.
      throw new Error(`txn failed after passing its checks: ${(error as Error).message}`);
    } finally {
      txn.end();
    }
    response.header = create(ResponseHeaderSchema, { revision: BigInt(this.store.currentRevision) });
    return response;
  }

  /**
   * Checks the writes along the txn's path in the order they will run, tracking
   * which keys exist after each one: a put with ignore_value or ignore_lease
   * needs its key to exist at that point. (etcd 3.4 checks against the state
   * before the txn only, and crashes when an earlier from-key delete removed the
   * key; tetcd refuses the txn instead.)
   */
  private checkWrite(op: RequestOp, existence: KeyExistence): void {
    if (op.request.case === "requestDeleteRange") {
      existence.delete(keyToString(op.request.value.key), rangeEndToString(op.request.value.rangeEnd));
      return;
    }
    if (op.request.case !== "requestPut") return;
    const request = op.request.value;
    const key = keyToString(request.key);
    if ((request.ignoreValue || request.ignoreLease) && !existence.exists(key)) throw errors.ErrKeyNotFound;
    if (request.lease !== 0n && !this.lessor.exists(request.lease)) throw errors.ErrLeaseNotFound;
    existence.put(key);
  }

  private checkRange(op: RequestOp): void {
    if (op.request.case !== "requestRange") return;
    const revision = Number(op.request.value.revision);
    if (revision === 0) return;
    if (revision > this.store.currentRevision) throw errors.ErrFutureRevision;
    if (revision < this.store.compactRevision) throw errors.ErrCompacted;
  }

  private executeOp(txn: WriteTransaction, op: RequestOp): ResponseOp["response"] {
    switch (op.request.case) {
      case "requestRange":
        return { case: "responseRange", value: executeRange(txn, op.request.value) };
      case "requestPut":
        return { case: "responsePut", value: this.put(txn, op.request.value, true) };
      case "requestDeleteRange":
        return { case: "responseDeleteRange", value: this.deleteRange(txn, op.request.value) };
      default:
        throw new Error(`unexpected txn operation ${op.request.case}`);
    }
  }

  private compaction(request: CompactionRequest): ApplyResult {
    const physical = this.store.compact(Number(request.revision));
    const response = create(CompactionResponseSchema, { header: create(ResponseHeaderSchema, { revision: BigInt(this.store.currentRevision) }) });
    return { response, physical };
  }

  private leaseGrant(request: LeaseGrantRequest): LeaseGrantResponse {
    if (this.noSpace) throw errors.ErrNoSpace;
    if (request.TTL > BigInt(leaseLimits.ttlSecondsMax)) throw errors.ErrLeaseTtlTooLarge;
    if (this.lessor.exists(request.ID)) throw errors.ErrLeaseExists;
    const ttlSeconds = Math.max(Number(request.TTL), this.minLeaseTtlSeconds);
    this.lessor.grant(request.ID, ttlSeconds);
    return create(LeaseGrantResponseSchema, {
      header: create(ResponseHeaderSchema, { revision: BigInt(this.store.currentRevision) }),
      ID: request.ID,
      TTL: BigInt(ttlSeconds),
    });
  }

  private leaseRevoke(request: LeaseRevokeRequest): LeaseRevokeResponse {
    const lease = this.lessor.get(request.ID);
    if (lease === undefined) throw errors.ErrLeaseNotFound;
    const keys = [...lease.keys].sort();
    if (keys.length > 0) {
      this.standalone((txn) => {
        for (const key of keys) txn.deleteRange(key, undefined);
      });
    }
    this.lessor.remove(request.ID);
    return create(LeaseRevokeResponseSchema, { header: create(ResponseHeaderSchema, { revision: BigInt(this.store.currentRevision) }) });
  }

  private leaseCheckpoint(request: LeaseCheckpointRequest): LeaseCheckpointResponse {
    for (const checkpoint of request.checkpoints) this.lessor.checkpoint(checkpoint.ID, Number(checkpoint.remainingTTL));
    return create(LeaseCheckpointResponseSchema, { header: create(ResponseHeaderSchema, { revision: BigInt(this.store.currentRevision) }) });
  }

  private alarm(request: AlarmRequest): AlarmResponse {
    // etcd 3.4 answers alarm requests without a response header.
    const response = create(AlarmResponseSchema);
    const alarm = { memberId: request.memberID, type: request.alarm };
    switch (request.action) {
      case AlarmAction.GET:
        response.alarms = this.alarms
          .list()
          .filter((raised) => request.alarm === AlarmType.NONE || raised.type === request.alarm)
          .map((raised) => create(AlarmMemberSchema, { memberID: raised.memberId, alarm: raised.type }));
        break;
      case AlarmAction.ACTIVATE:
        if (request.alarm === AlarmType.NONE) break;
        this.alarms.activate(alarm);
        response.alarms = [create(AlarmMemberSchema, { memberID: alarm.memberId, alarm: alarm.type })];
        break;
      case AlarmAction.DEACTIVATE:
        if (this.alarms.deactivate(alarm)) response.alarms = [create(AlarmMemberSchema, { memberID: alarm.memberId, alarm: alarm.type })];
        break;
    }
    return response;
  }
}

/** Which keys exist as a txn's writes run, without running them. */
class KeyExistence {
  private readonly deleted = new Set<string>();
  private readonly added = new Set<string>();

  constructor(private readonly store: KvStore) {}

  exists(key: string): boolean {
    if (this.added.has(key)) return true;
    if (this.deleted.has(key)) return false;
    return this.store.range(key, undefined, { countOnly: true }).count > 0;
  }

  put(key: string): void {
    this.added.add(key);
    this.deleted.delete(key);
  }

  delete(key: string, end: string | undefined): void {
    const inRange = (candidate: string): boolean => (end === undefined ? candidate === key : candidate >= key && (end === "" || candidate < end));
    for (const kv of this.store.range(key, end).kvs) this.deleted.add(keyToString(kv.key));
    for (const candidate of [...this.added]) {
      if (inRange(candidate)) {
        this.added.delete(candidate);
        this.deleted.add(candidate);
      }
    }
  }
}

function hasPut(request: TxnRequest): boolean {
  return [...request.success, ...request.failure].some((op) => op.request.case === "requestPut" || (op.request.case === "requestTxn" && hasPut(op.request.value)));
}

export function toEtcdError(error: StoreError): errors.EtcdError {
  if (error.code === "Compacted") return errors.ErrCompacted;
  if (error.code === "FutureRevision") return errors.ErrFutureRevision;
  throw error;
}
