import { create } from "@bufbuild/protobuf";
import {
  Compare_CompareResult as CompareResult,
  Compare_CompareTarget as CompareTarget,
  RangeRequest_SortOrder as SortOrder,
  RangeRequest_SortTarget as SortTarget,
  CompareSchema,
  RangeRequestSchema,
  type Compare,
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  type RangeRequest,
  type RangeResponse,
  type ResponseHeader,
  type TxnRequest,
  type TxnResponse,
} from "../gen/etcdserverpb/rpc_pb.js";
import type { KeyWatch } from "./key-watch.js";

/**
 * What etcd's lock and election recipes need from the member, as a clientv3
 * client gives it to them: KV calls (validated, headers complete), a lease
 * grant, and watches. Errors are the member's own.
 */
export interface RecipeBackend {
  txn(request: TxnRequest): Promise<TxnResponse>;
  range(request: RangeRequest): Promise<RangeResponse>;
  deleteRange(request: DeleteRangeRequest): Promise<DeleteRangeResponse>;
  /** Grants a lease of `ttlSeconds` with an id the member picks; resolves with the id. */
  grantLease(ttlSeconds: number): Promise<bigint>;
  /** Watches `key` (or [key, end)) from `startRevision`; keys are latin1 strings. */
  watch(range: { key: string; end?: string; startRevision: number }, signal: AbortSignal): KeyWatch;
  /** A complete response header at `revision`. */
  header(revision: number): ResponseHeader;
}

/** The TTL of the lease a session grants when the caller names none (clientv3's default session TTL). */
export const defaultSessionTtlSeconds = 60;

/** A lease id as Go's %x prints an int64. */
export function leaseHex(lease: bigint): string {
  return lease < 0n ? `-${(-lease).toString(16)}` : lease.toString(16);
}

/** `<prefix><lease id in hex>`: the key a session owns under a prefix. */
export function sessionKey(prefix: Uint8Array, lease: bigint): Uint8Array {
  return Buffer.concat([prefix, Buffer.from(leaseHex(lease), "latin1")]);
}

/** The name plus "/": the prefix under which a lock's or an election's keys live. */
export function prefixOf(name: Uint8Array): Uint8Array {
  return Buffer.concat([name, Buffer.from("/")]);
}

/** The end of the range of keys starting with `prefix` (clientv3's WithPrefix). */
export function prefixEnd(prefix: Uint8Array): Uint8Array {
  const end = Buffer.from(prefix);
  for (let index = end.length - 1; index >= 0; index--) {
    if (end[index]! < 0xff) {
      end[index]! += 1;
      return end.subarray(0, index + 1);
    }
  }
  return Buffer.from([0]);
}

/** `create_revision(key) == revision`. */
export function createRevisionIs(key: Uint8Array, revision: bigint): Compare {
  return create(CompareSchema, { key, result: CompareResult.EQUAL, target: CompareTarget.CREATE, targetUnion: { case: "createRevision", value: revision } });
}

/** The key under `prefix` created first (clientv3's WithFirstCreate) or last (WithLastCreate), optionally created at or before `maxCreateRevision`. */
export function byCreateRevision(prefix: Uint8Array, order: "first" | "last", maxCreateRevision = 0n): RangeRequest {
  return create(RangeRequestSchema, {
    key: prefix,
    rangeEnd: prefixEnd(prefix),
    limit: 1n,
    sortTarget: SortTarget.CREATE,
    sortOrder: order === "first" ? SortOrder.ASCEND : SortOrder.DESCEND,
    maxCreateRevision,
  });
}

/** Waits until `key` is deleted, watching from `revision`. */
export async function waitDelete(backend: RecipeBackend, key: Uint8Array, revision: bigint, signal: AbortSignal): Promise<void> {
  const watch = backend.watch({ key: Buffer.from(key).toString("latin1"), startRevision: Number(revision) }, signal);
  try {
    for (;;) {
      const response = await watch.next();
      if (response.events.some((event) => event.type === "delete")) return;
    }
  } finally {
    watch.close();
  }
}

/**
 * Waits until no key under `prefix` created at or before `maxCreateRevision`
 * is left, one at a time from the newest: each waiter waits only on the key
 * just before its own. Resolves with the header of the last (empty) read.
 */
export async function waitDeletes(backend: RecipeBackend, prefix: Uint8Array, maxCreateRevision: bigint, signal: AbortSignal): Promise<ResponseHeader> {
  for (;;) {
    const response = await backend.range(byCreateRevision(prefix, "last", maxCreateRevision));
    const last = response.kvs[0];
    if (last === undefined) return response.header!;
    await waitDelete(backend, last.key, response.header!.revision, signal);
  }
}
