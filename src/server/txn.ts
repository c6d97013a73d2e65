import { create } from "@bufbuild/protobuf";
import {
  Compare_CompareResult as CompareResult,
  Compare_CompareTarget as CompareTarget,
  ResponseHeaderSchema,
  ResponseOpSchema,
  TxnResponseSchema,
  type Compare,
  type RequestOp,
  type ResponseOp,
  type TxnRequest,
  type TxnResponse,
} from "../gen/etcdserverpb/rpc_pb.js";
import type { KeyValue } from "../mvcc/key-value.js";
import { keyToString, rangeEndToString } from "../mvcc/keys.js";
import type { RangeView } from "./range.js";

/**
 * The branch every (nested) transaction takes, decided before any of its
 * operations runs: element 0 is the outer transaction, then the nested ones in
 * the order they appear along the chosen branches.
 */
export function compareToPath(view: RangeView, request: TxnRequest): boolean[] {
  const succeeded = request.compare.every((compare) => applyCompare(view, compare));
  const path = [succeeded];
  for (const op of succeeded ? request.success : request.failure) {
    if (op.request.case === "requestTxn") path.push(...compareToPath(view, op.request.value));
  }
  return path;
}

function applyCompare(view: RangeView, compare: Compare): boolean {
  let kvs: KeyValue[];
  try {
    kvs = view.range(keyToString(compare.key), rangeEndToString(compare.rangeEnd)).kvs;
  } catch {
    return false;
  }
  if (kvs.length === 0) {
    // A missing key has no value to compare; every other target compares as zero.
    if (compare.target === CompareTarget.VALUE) return false;
    return compareKeyValue(compare, { key: compare.key, createRevision: 0, modRevision: 0, version: 0, value: new Uint8Array(0), lease: 0n });
  }
  return kvs.every((kv) => compareKeyValue(compare, kv));
}

function compareKeyValue(compare: Compare, kv: KeyValue): boolean {
  const target = compare.targetUnion;
  let result: number;
  switch (compare.target) {
    case CompareTarget.VALUE:
      result = Buffer.compare(kv.value, target.case === "value" ? target.value : new Uint8Array(0));
      break;
    case CompareTarget.CREATE:
      result = Math.sign(kv.createRevision - (target.case === "createRevision" ? Number(target.value) : 0));
      break;
    case CompareTarget.MOD:
      result = Math.sign(kv.modRevision - (target.case === "modRevision" ? Number(target.value) : 0));
      break;
    case CompareTarget.VERSION:
      result = Math.sign(kv.version - (target.case === "version" ? Number(target.value) : 0));
      break;
    case CompareTarget.LEASE: {
      const lease = target.case === "lease" ? target.value : 0n;
      result = kv.lease === lease ? 0 : kv.lease < lease ? -1 : 1;
      break;
    }
    default:
      return true;
  }
  switch (compare.result) {
    case CompareResult.EQUAL:
      return result === 0;
    case CompareResult.NOT_EQUAL:
      return result !== 0;
    case CompareResult.GREATER:
      return result > 0;
    case CompareResult.LESS:
      return result < 0;
    default:
      return true;
  }
}

/** Calls `check` on every non-txn operation along `path`; returns how many path elements the nested txns used. */
export function checkAlongPath(request: TxnRequest, path: boolean[], check: (op: RequestOp) => void): number {
  let used = 0;
  let rest = path.slice(1);
  for (const op of path[0] ? request.success : request.failure) {
    if (op.request.case === "requestTxn") {
      const nested = checkAlongPath(op.request.value, rest, check);
      used += nested + 1;
      rest = rest.slice(nested + 1);
    } else {
      check(op);
    }
  }
  return used;
}

/** Runs the operations along `path`, nested txns included; returns the response and path elements used. */
export function executeAlongPath(
  request: TxnRequest,
  path: boolean[],
  execute: (op: RequestOp) => ResponseOp["response"],
  nestedHeader: boolean,
): { response: TxnResponse; used: number } {
  const responses: ResponseOp[] = [];
  let used = 0;
  let rest = path.slice(1);
  for (const op of path[0] ? request.success : request.failure) {
    if (op.request.case === "requestTxn") {
      const nested = executeAlongPath(op.request.value, rest, execute, true);
      responses.push(create(ResponseOpSchema, { response: { case: "responseTxn", value: nested.response } }));
      used += nested.used + 1;
      rest = rest.slice(nested.used + 1);
    } else {
      responses.push(create(ResponseOpSchema, { response: execute(op) }));
    }
  }
  const response = create(TxnResponseSchema, { succeeded: path[0]!, responses });
  // etcd gives nested transactions an empty header; the outer one is filled by the caller.
  if (nestedHeader) response.header = create(ResponseHeaderSchema);
  return { response, used };
}

export function isTxnReadOnly(request: TxnRequest): boolean {
  return [...request.success, ...request.failure].every((op) => {
    if (op.request.case === "requestRange") return true;
    if (op.request.case === "requestTxn") return isTxnReadOnly(op.request.value);
    return false;
  });
}

export function isTxnSerializable(request: TxnRequest): boolean {
  return [...request.success, ...request.failure].every((op) => {
    if (op.request.case === "requestRange") return op.request.value.serializable;
    if (op.request.case === "requestTxn") return isTxnSerializable(op.request.value);
    return true;
  });
}
