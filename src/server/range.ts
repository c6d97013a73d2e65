import { create } from "@bufbuild/protobuf";
import { KeyValueSchema, type KeyValue as KeyValueMessage } from "../gen/mvccpb/kv_pb.js";
import { RangeRequest_SortOrder as SortOrder, RangeRequest_SortTarget as SortTarget, RangeResponseSchema, ResponseHeaderSchema, type RangeRequest, type RangeResponse } from "../gen/etcdserverpb/rpc_pb.js";
import type { KeyValue } from "../mvcc/key-value.js";
import { keyToString, rangeEndToString } from "../mvcc/keys.js";
import type { RangeOptions, RangeResult } from "../mvcc/store.js";

/** Anything that can range: the store itself, or a write transaction seeing its own changes. */
export interface RangeView {
  range(key: string, end: string | undefined, options?: RangeOptions): RangeResult;
}

/**
 * A Range request against a view, as etcd's applier does it: when the request
 * sorts or filters, everything in the range is fetched; otherwise one more than
 * the limit, to learn whether there are `more`. Then filter, sort, cut to the limit.
 */
export function executeRange(view: RangeView, request: RangeRequest): RangeResponse {
  const filtered = request.minModRevision !== 0n || request.maxModRevision !== 0n || request.minCreateRevision !== 0n || request.maxCreateRevision !== 0n;
  const limit = Number(request.limit);
  const fetchAll = request.sortOrder !== SortOrder.NONE || filtered;
  const options: RangeOptions = {
    limit: !fetchAll && limit > 0 ? limit + 1 : 0,
    revision: Number(request.revision),
    countOnly: request.countOnly,
  };
  const result = view.range(keyToString(request.key), rangeEndToString(request.rangeEnd), options);
  let kvs = result.kvs;
  if (filtered) kvs = kvs.filter((kv) => keepByRevisionFilters(kv, request));
  sortKeyValues(kvs, request.sortOrder, request.sortTarget);
  let more = false;
  if (limit > 0 && kvs.length > limit) {
    kvs = kvs.slice(0, limit);
    more = true;
  }
  return create(RangeResponseSchema, {
    header: create(ResponseHeaderSchema, { revision: BigInt(result.revision) }),
    kvs: kvs.map((kv) => toKeyValueMessage(kv, request.keysOnly)),
    more,
    count: BigInt(result.count),
  });
}

function keepByRevisionFilters(kv: KeyValue, request: RangeRequest): boolean {
  if (request.maxModRevision !== 0n && kv.modRevision > Number(request.maxModRevision)) return false;
  if (request.minModRevision !== 0n && kv.modRevision < Number(request.minModRevision)) return false;
  if (request.maxCreateRevision !== 0n && kv.createRevision > Number(request.maxCreateRevision)) return false;
  if (request.minCreateRevision !== 0n && kv.createRevision < Number(request.minCreateRevision)) return false;
  return true;
}

function sortKeyValues(kvs: KeyValue[], requestedOrder: SortOrder, target: SortTarget): void {
  // The store returns keys in ascending order; any other target defaults to ascending.
  const order = target !== SortTarget.KEY && requestedOrder === SortOrder.NONE ? SortOrder.ASCEND : requestedOrder;
  if (order === SortOrder.NONE) return;
  const compare = comparatorFor(target);
  if (order === SortOrder.ASCEND) kvs.sort(compare);
  else kvs.sort((a, b) => compare(b, a));
}

function comparatorFor(target: SortTarget): (a: KeyValue, b: KeyValue) => number {
  switch (target) {
    case SortTarget.KEY:
      return (a, b) => Buffer.compare(a.key, b.key);
    case SortTarget.VERSION:
      return (a, b) => a.version - b.version;
    case SortTarget.CREATE:
      return (a, b) => a.createRevision - b.createRevision;
    case SortTarget.MOD:
      return (a, b) => a.modRevision - b.modRevision;
    case SortTarget.VALUE:
      return (a, b) => Buffer.compare(a.value, b.value);
    default:
      throw new Error(`sort target ${target} not validated`);
  }
}

export function toKeyValueMessage(kv: KeyValue, keysOnly = false): KeyValueMessage {
  return create(KeyValueSchema, {
    key: kv.key,
    createRevision: BigInt(kv.createRevision),
    modRevision: BigInt(kv.modRevision),
    version: BigInt(kv.version),
    value: keysOnly ? new Uint8Array(0) : kv.value,
    lease: kv.lease,
  });
}
