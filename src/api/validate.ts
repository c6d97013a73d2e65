import type { DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest } from "../gen/etcdserverpb/rpc_pb.js";
import { keyToString } from "../mvcc/keys.js";
import * as errors from "../server/errors.js";

/** Request checks made before anything is proposed, exactly those of etcd's v3rpc layer. */
export function checkRangeRequest(request: RangeRequest): void {
  if (request.key.length === 0) throw errors.ErrEmptyKey;
  if (request.sortOrder < 0 || request.sortOrder > 2 || request.sortTarget < 0 || request.sortTarget > 4) throw errors.ErrInvalidSortOption;
}

export function checkPutRequest(request: PutRequest): void {
  if (request.key.length === 0) throw errors.ErrEmptyKey;
  if (request.ignoreValue && request.value.length !== 0) throw errors.ErrValueProvided;
  if (request.ignoreLease && request.lease !== 0n) throw errors.ErrLeaseProvided;
}

export function checkDeleteRequest(request: DeleteRangeRequest): void {
  if (request.key.length === 0) throw errors.ErrEmptyKey;
}

export function checkTxnRequest(request: TxnRequest, maxTxnOps: number): void {
  checkTxnOps(request, maxTxnOps);
  // Overlaps are checked after the cheaper checks, as etcd does, to avoid quadratic work on bad input.
  checkIntervals(request.success);
  checkIntervals(request.failure);
}

function checkTxnOps(request: TxnRequest, maxTxnOps: number): void {
  const operations = Math.max(request.compare.length, request.success.length, request.failure.length);
  if (operations > maxTxnOps) throw errors.ErrTooManyOps;
  for (const compare of request.compare) if (compare.key.length === 0) throw errors.ErrEmptyKey;
  for (const op of [...request.success, ...request.failure]) checkRequestOp(op, maxTxnOps - operations);
}

function checkRequestOp(op: RequestOp, maxTxnOps: number): void {
  switch (op.request.case) {
    case "requestRange":
      return checkRangeRequest(op.request.value);
    case "requestPut":
      return checkPutRequest(op.request.value);
    case "requestDeleteRange":
      return checkDeleteRequest(op.request.value);
    case "requestTxn":
      return checkTxnOps(op.request.value, maxTxnOps);
    default:
      // An empty operation.
      throw errors.ErrKeyNotFound;
  }
}

/** A half-open interval of keys; end "" is unbounded. */
interface Interval {
  begin: string;
  end: string;
}

const contains = (interval: Interval, key: string): boolean => interval.begin <= key && (interval.end === "" || key < interval.end);

/**
 * Puts and deletes of one branch must not touch the same key, nested branches
 * included; a key put in both branches of one nested txn is fine, since only one
 * of them runs. Returns the branch's puts and deletes for the level above.
 */
function checkIntervals(ops: RequestOp[]): { puts: Set<string>; deletes: Interval[] } {
  const deletes: Interval[] = [];
  for (const op of ops) {
    if (op.request.case !== "requestDeleteRange") continue;
    const request = op.request.value;
    const begin = keyToString(request.key);
    deletes.push(request.rangeEnd.length !== 0 ? { begin, end: keyToString(request.rangeEnd) } : { begin, end: begin + "\0" });
  }
  const deleted = (key: string): boolean => deletes.some((interval) => contains(interval, key));
  const puts = new Set<string>();
  for (const op of ops) {
    if (op.request.case !== "requestTxn") continue;
    const then = checkIntervals(op.request.value.success);
    const otherwise = checkIntervals(op.request.value.failure);
    for (const key of then.puts) {
      if (puts.has(key) || deleted(key)) throw errors.ErrDuplicateKey;
      puts.add(key);
    }
    for (const key of otherwise.puts) {
      if (puts.has(key) && !then.puts.has(key)) throw errors.ErrDuplicateKey;
      if (deleted(key)) throw errors.ErrDuplicateKey;
      puts.add(key);
    }
    deletes.push(...then.deletes, ...otherwise.deletes);
  }
  for (const op of ops) {
    if (op.request.case !== "requestPut") continue;
    const key = keyToString(op.request.value.key);
    if (puts.has(key) || deleted(key)) throw errors.ErrDuplicateKey;
    puts.add(key);
  }
  return { puts, deletes };
}
