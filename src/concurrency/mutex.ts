import { create } from "@bufbuild/protobuf";
import { DeleteRangeRequestSchema, PutRequestSchema, RangeRequestSchema, RequestOpSchema, TxnRequestSchema, type ResponseHeader } from "../gen/etcdserverpb/rpc_pb.js";
import { byCreateRevision, createRevisionIs, defaultSessionTtlSeconds, prefixOf, sessionKey, waitDeletes, type RecipeBackend } from "./recipes.js";

export interface LockResult {
  header: ResponseHeader;
  key: Uint8Array;
}

/**
 * etcd's distributed lock, as its v3lock server runs clientv3's Mutex: the
 * holder's key is `<name>/<lease id in hex>`, put with the lease; the key with
 * the lowest create revision under `<name>/` holds the lock; a waiter waits for
 * the deletion of the key created just before its own, then for the next,
 * until none is left. Lease 0 gets a lease of its own, as a session does.
 * When the caller gives up while waiting, its key is deleted.
 */
export async function lock(backend: RecipeBackend, name: Uint8Array, leaseId: bigint, signal: AbortSignal): Promise<LockResult> {
  const lease = leaseId === 0n ? await backend.grantLease(defaultSessionTtlSeconds) : leaseId;
  const prefix = prefixOf(name);
  const key = sessionKey(prefix, lease);
  const range = (request: Parameters<typeof byCreateRevision>) => create(RequestOpSchema, { request: { case: "requestRange", value: byCreateRevision(...request) } });
  const response = await backend.txn(
    create(TxnRequestSchema, {
      compare: [createRevisionIs(key, 0n)],
      success: [create(RequestOpSchema, { request: { case: "requestPut", value: create(PutRequestSchema, { key, lease }) } }), range([prefix, "first"])],
      failure: [create(RequestOpSchema, { request: { case: "requestRange", value: create(RangeRequestSchema, { key }) } }), range([prefix, "first"])],
    }),
  );
  let myRevision = response.header!.revision;
  if (!response.succeeded) myRevision = rangeKvs(response.responses[0])[0]!.createRevision;
  const owner = rangeKvs(response.responses[1])[0];
  if (owner === undefined || owner.createRevision === myRevision) return { header: response.header!, key };
  let header;
  try {
    header = await waitDeletes(backend, prefix, myRevision - 1n, signal);
  } catch (error) {
    // A waiter that gives up withdraws its key.
    await unlock(backend, key).catch(() => undefined);
    throw error;
  }
  // As in etcd 3.4, a waiter whose own key went with its lease while it waited is not told so.
  return { header, key };
}

/** Releases a lock by deleting its key; resolves with the delete's header. */
export async function unlock(backend: RecipeBackend, key: Uint8Array): Promise<ResponseHeader> {
  const response = await backend.deleteRange(create(DeleteRangeRequestSchema, { key }));
  return response.header!;
}

type TxnResponseOp = Awaited<ReturnType<RecipeBackend["txn"]>>["responses"][number] | undefined;

function rangeKvs(op: TxnResponseOp) {
  if (op?.response.case !== "responseRange") throw new Error("lock transaction answered without a range");
  return op.response.value.kvs;
}
