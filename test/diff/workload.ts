import type { MessageInitShape } from "@bufbuild/protobuf";
import type { CompareSchema, RequestOpSchema, TxnRequestSchema } from "../../src/gen/etcdserverpb/rpc_pb.js";
import type { Random } from "../support/random.js";

/**
 * Random KV requests over a small key space: few enough keys (at most 11 in any
 * range) that sorting by a non-unique target orders ties the same way in etcd
 * (insertion sort below 12 elements) and in tetcd (stable sort).
 */
export const keys = ["a", "a/1", "a/2", "a/3", "b", "b/1", "b/2", "c", "d/x", "d/y", "e"];
const prefixes = ["a", "a/", "b", "b/", "d/", "c", "z"];
const text = new TextEncoder();
const bytes = (value: string): Uint8Array => text.encode(value);

export type Operation =
  | { method: "range"; request: Record<string, unknown> }
  | { method: "put"; request: Record<string, unknown> }
  | { method: "deleteRange"; request: Record<string, unknown> }
  | { method: "txn"; request: MessageInitShape<typeof TxnRequestSchema> }
  | { method: "compact"; request: Record<string, unknown> }
  | { method: "hashKV"; request: Record<string, unknown> }
  | { method: "leaseGrant"; request: Record<string, unknown> }
  | { method: "leaseRevoke"; request: Record<string, unknown> };

export const leaseIds = [1001n, 1002n];

/** The state the generator needs to aim its revisions near the interesting ones. */
export interface WorkloadState {
  revision: number;
  compactRevision: number;
}

function keyRange(random: Random): { key: Uint8Array; rangeEnd?: Uint8Array } {
  const kind = random.int(0, 4);
  if (kind <= 1) return { key: bytes(random.pick(keys)) };
  if (kind === 2) {
    const prefix = random.pick(prefixes);
    const end = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
    return { key: bytes(prefix), rangeEnd: bytes(end) };
  }
  if (kind === 3) return { key: bytes(random.pick(keys)), rangeEnd: new Uint8Array([0]) };
  const [first, second] = [random.pick(keys), random.pick(keys)];
  return { key: bytes(first), rangeEnd: bytes(second) };
}

function revision(random: Random, state: WorkloadState): bigint {
  if (random.chance(0.5)) return 0n;
  return BigInt(Math.max(0, random.int(state.compactRevision - 1, state.revision + 2)));
}

function rangeRequest(random: Random, state: WorkloadState): Record<string, unknown> {
  const request: Record<string, unknown> = { ...keyRange(random) };
  if (random.chance(0.3)) request["limit"] = BigInt(random.int(1, 4));
  request["revision"] = revision(random, state);
  if (random.chance(0.4)) {
    request["sortOrder"] = random.int(0, 2);
    request["sortTarget"] = random.int(0, 4);
  }
  request["serializable"] = random.chance(0.3);
  request["keysOnly"] = random.chance(0.15);
  request["countOnly"] = random.chance(0.1);
  if (random.chance(0.15)) request["minModRevision"] = BigInt(random.int(1, state.revision));
  if (random.chance(0.15)) request["maxModRevision"] = BigInt(random.int(1, state.revision));
  if (random.chance(0.15)) request["minCreateRevision"] = BigInt(random.int(1, state.revision));
  if (random.chance(0.15)) request["maxCreateRevision"] = BigInt(random.int(1, state.revision));
  if (random.chance(0.02)) request["key"] = new Uint8Array(0);
  return request;
}

function putRequest(random: Random): Record<string, unknown> {
  const request: Record<string, unknown> = { key: bytes(random.pick(keys)), value: bytes(`v${random.int(0, 30)}`) };
  if (random.chance(0.05)) request["value"] = new Uint8Array(0);
  request["prevKv"] = random.chance(0.3);
  if (random.chance(0.2)) request["lease"] = random.pick([...leaseIds, 999n]);
  if (random.chance(0.08)) {
    request["ignoreValue"] = true;
    if (!random.chance(0.2)) request["value"] = new Uint8Array(0);
  }
  if (random.chance(0.08)) {
    request["ignoreLease"] = true;
    if (!random.chance(0.2)) delete request["lease"];
  }
  if (random.chance(0.02)) request["key"] = new Uint8Array(0);
  return request;
}

function deleteRequest(random: Random): Record<string, unknown> {
  return { ...keyRange(random), prevKv: random.chance(0.4) };
}

function compare(random: Random, state: WorkloadState): MessageInitShape<typeof CompareSchema> {
  const target = random.int(0, 4);
  const result = random.int(0, 3);
  const base = { key: bytes(random.pick(keys)), target, result, ...(random.chance(0.15) ? { rangeEnd: keyRange(random).rangeEnd ?? new Uint8Array(0) } : {}) };
  switch (target) {
    case 0:
      return { ...base, targetUnion: { case: "version", value: BigInt(random.int(0, 4)) } };
    case 1:
      return { ...base, targetUnion: { case: "createRevision", value: BigInt(random.int(0, state.revision + 1)) } };
    case 2:
      return { ...base, targetUnion: { case: "modRevision", value: BigInt(random.int(0, state.revision + 1)) } };
    case 3:
      return { ...base, targetUnion: { case: "value", value: bytes(`v${random.int(0, 30)}`) } };
    default:
      return { ...base, targetUnion: { case: "lease", value: random.pick([0n, ...leaseIds]) } };
  }
}

function requestOps(random: Random, state: WorkloadState, depth: number): MessageInitShape<typeof RequestOpSchema>[] {
  const ops: MessageInitShape<typeof RequestOpSchema>[] = [];
  const count = random.int(0, 4);
  for (let index = 0; index < count; index++) {
    const kind = random.int(0, depth < 1 ? 3 : 2);
    if (kind === 0) ops.push({ request: { case: "requestRange", value: rangeRequest(random, state) } });
    else if (kind === 1) ops.push({ request: { case: "requestPut", value: putRequest(random) } });
    else if (kind === 2) ops.push({ request: { case: "requestDeleteRange", value: deleteRequest(random) } });
    else ops.push({ request: { case: "requestTxn", value: txnRequest(random, state, depth + 1) } });
  }
  if (random.chance(0.01)) ops.push({});
  return ops;
}

function txnRequest(random: Random, state: WorkloadState, depth: number): MessageInitShape<typeof TxnRequestSchema> {
  const compares = Array.from({ length: random.int(0, 3) }, () => compare(random, state));
  const request = { compare: compares, success: requestOps(random, state, depth), failure: requestOps(random, state, depth) };
  // etcd 3.4 crashes when a from-key delete removes a key that a later put with
  // ignore_value or ignore_lease needs; such txns are tested on tetcd alone.
  if (depth === 0 && containsDelete(request)) stripIgnoreFlags(request);
  return request;
}

type TxnInit = MessageInitShape<typeof TxnRequestSchema>;

function containsDelete(request: TxnInit): boolean {
  return [...(request.success ?? []), ...(request.failure ?? [])].some(
    (op) => op.request?.case === "requestDeleteRange" || (op.request?.case === "requestTxn" && containsDelete(op.request.value as TxnInit)),
  );
}

function stripIgnoreFlags(request: TxnInit): void {
  for (const op of [...(request.success ?? []), ...(request.failure ?? [])]) {
    if (op.request?.case === "requestPut") {
      const put = op.request.value as Record<string, unknown>;
      delete put["ignoreValue"];
      delete put["ignoreLease"];
    } else if (op.request?.case === "requestTxn") {
      stripIgnoreFlags(op.request.value as TxnInit);
    }
  }
}

export function nextOperation(random: Random, state: WorkloadState): Operation {
  const roll = random.next();
  if (roll < 0.3) return { method: "range", request: rangeRequest(random, state) };
  if (roll < 0.55) return { method: "put", request: putRequest(random) };
  if (roll < 0.65) return { method: "deleteRange", request: deleteRequest(random) };
  if (roll < 0.88) {
    const request = txnRequest(random, state, 0);
    if (random.chance(0.02)) request.success = Array.from({ length: 129 }, (_, index) => ({ request: { case: "requestPut", value: { key: bytes(`many/${index}`), value: bytes("x") } } }));
    return { method: "txn", request };
  }
  if (roll < 0.92) return { method: "compact", request: { revision: BigInt(random.int(Math.max(0, state.compactRevision - 1), state.revision + 1)), physical: random.chance(0.5) } };
  if (roll < 0.96) return { method: "hashKV", request: { revision: revision(random, state) } };
  if (roll < 0.98) return { method: "leaseGrant", request: { ID: random.pick(leaseIds), TTL: 3600n } };
  return { method: "leaseRevoke", request: { ID: random.pick([...leaseIds, 998n]) } };
}
