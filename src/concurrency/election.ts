import { create } from "@bufbuild/protobuf";
import { DeleteRangeRequestSchema, PutRequestSchema, RangeRequestSchema, RequestOpSchema, TxnRequestSchema, type ResponseHeader } from "../gen/etcdserverpb/rpc_pb.js";
import type { KeyValue as KeyValueMessage } from "../gen/mvccpb/kv_pb.js";
import { toKeyValueMessage } from "../server/range.js";
import { byCreateRevision, createRevisionIs, defaultSessionTtlSeconds, prefixEnd, prefixOf, sessionKey, waitDeletes, type RecipeBackend } from "./recipes.js";

/** clientv3/concurrency's errors, whose words etcd's election server sends. */
export const ErrElectionNotLeader = "election: not leader";
export const ErrElectionNoLeader = "election: no leader";

/** A leader's handle: the election's name, its key, the key's create revision, and its lease. */
export interface Leadership {
  name: Uint8Array;
  key: Uint8Array;
  rev: bigint;
  lease: bigint;
}

/** A leader as Leader and Observe report it: the header of the read or watch response, and the leader's key. */
export interface LeaderState {
  header: ResponseHeader;
  kv: KeyValueMessage;
}

/** A session's lease: the caller's, or for 0 a fresh one, as clientv3's NewSession gives. */
function sessionLease(backend: RecipeBackend, lease: bigint): Promise<bigint> {
  return lease === 0n ? backend.grantLease(defaultSessionTtlSeconds) : Promise.resolve(lease);
}

function putOp(key: Uint8Array, value: Uint8Array, lease: bigint) {
  return create(RequestOpSchema, { request: { case: "requestPut", value: create(PutRequestSchema, { key, value, lease }) } });
}

/**
 * Campaigns in election `name` with `value`, as etcd's election server runs
 * clientv3's Election: the candidate's key is `<name>/<lease id in hex>`; it
 * leads once every key created before its own is gone. Campaigning again with
 * the same lease keeps the key (and proclaims a changed value).
 */
export async function campaign(backend: RecipeBackend, name: Uint8Array, value: Uint8Array, leaseId: bigint, signal: AbortSignal): Promise<{ header: ResponseHeader; leader: Leadership }> {
  const lease = await sessionLease(backend, leaseId);
  const prefix = prefixOf(name);
  const key = sessionKey(prefix, lease);
  const response = await backend.txn(
    create(TxnRequestSchema, {
      compare: [createRevisionIs(key, 0n)],
      success: [putOp(key, value, lease)],
      failure: [create(RequestOpSchema, { request: { case: "requestRange", value: create(RangeRequestSchema, { key }) } })],
    }),
  );
  const leader: Leadership = { name, key, rev: response.header!.revision, lease };
  if (!response.succeeded) {
    const op = response.responses[0];
    const existing = op?.response.case === "responseRange" ? op.response.value.kvs[0] : undefined;
    if (existing === undefined) throw new Error("campaign transaction answered without the candidate's key");
    leader.rev = existing.createRevision;
    if (!Buffer.from(existing.value).equals(value)) await proclaimAs(backend, leader, value);
  }
  try {
    await waitDeletes(backend, prefix, leader.rev - 1n, signal);
  } catch (error) {
    // A candidate that gives up withdraws.
    if (signal.aborted) await resignAs(backend, leader).catch(() => undefined);
    throw error;
  }
  return { header: response.header!, leader };
}

/** A new value from the leader, without another election; "election: not leader" if `leader` no longer leads. */
export async function proclaim(backend: RecipeBackend, leader: Leadership, value: Uint8Array): Promise<ResponseHeader> {
  return proclaimAs(backend, { ...leader, lease: await sessionLease(backend, leader.lease) }, value);
}

async function proclaimAs(backend: RecipeBackend, leader: Leadership, value: Uint8Array): Promise<ResponseHeader> {
  const response = await backend.txn(create(TxnRequestSchema, { compare: [createRevisionIs(leader.key, leader.rev)], success: [putOp(leader.key, value, leader.lease)] }));
  if (!response.succeeded) throw new Error(ErrElectionNotLeader);
  return response.header!;
}

/** Gives up leadership (deletes the key if it is still the one `leader` names); never fails for a leader that is gone. */
export async function resign(backend: RecipeBackend, leader: Leadership): Promise<ResponseHeader> {
  await sessionLease(backend, leader.lease);
  return resignAs(backend, leader);
}

async function resignAs(backend: RecipeBackend, leader: Leadership): Promise<ResponseHeader> {
  const remove = create(RequestOpSchema, { request: { case: "requestDeleteRange", value: create(DeleteRangeRequestSchema, { key: leader.key }) } });
  const response = await backend.txn(create(TxnRequestSchema, { compare: [createRevisionIs(leader.key, leader.rev)], success: [remove] }));
  return response.header!;
}

/** The current leader: the key under `<name>/` created first; "election: no leader" when there is none. */
export async function currentLeader(backend: RecipeBackend, name: Uint8Array): Promise<LeaderState> {
  const response = await backend.range(byCreateRevision(prefixOf(name), "first"));
  const kv = response.kvs[0];
  if (kv === undefined) throw new Error(ErrElectionNoLeader);
  return { header: response.header!, kv };
}

/**
 * Reports every leader of election `name` in order, as clientv3's Observe
 * does: the current one (or the first to come), each value it proclaims,
 * and once its key is deleted, the next. Resolves when `signal` aborts, and,
 * as etcd's observer stream ends without an error, when a read or watch fails.
 */
export async function observe(backend: RecipeBackend, name: Uint8Array, signal: AbortSignal, send: (state: LeaderState) => Promise<void>): Promise<void> {
  const prefix = prefixOf(name);
  try {
    while (!signal.aborted) {
      const first = await backend.range(byCreateRevision(prefix, "first"));
      const leader = first.kvs[0] !== undefined ? { header: first.header!, kv: first.kvs[0] } : await firstPut(backend, prefix, first.header!.revision, signal);
      await send(leader);
      await followLeader(backend, leader, signal, send);
    }
  } catch {
    return;
  }
}

/** Waits for the first put under `prefix` from `revision`; its header's revision is the put's. */
async function firstPut(backend: RecipeBackend, prefix: Uint8Array, revision: bigint, signal: AbortSignal): Promise<LeaderState> {
  const watch = backend.watch({ key: Buffer.from(prefix).toString("latin1"), end: Buffer.from(prefixEnd(prefix)).toString("latin1"), startRevision: Number(revision) }, signal);
  try {
    for (;;) {
      const response = await watch.next();
      const put = response.events.find((event) => event.type === "put");
      if (put !== undefined) return { header: backend.header(put.kv.modRevision), kv: toKeyValueMessage(put.kv) };
    }
  } finally {
    watch.close();
  }
}

/** Sends each new value of the leader's key until it is deleted. */
async function followLeader(backend: RecipeBackend, leader: LeaderState, signal: AbortSignal, send: (state: LeaderState) => Promise<void>): Promise<void> {
  const key = Buffer.from(leader.kv.key).toString("latin1");
  const watch = backend.watch({ key, startRevision: Number(leader.header.revision) + 1 }, signal);
  try {
    for (;;) {
      const response = await watch.next();
      for (const event of response.events) {
        if (event.type === "delete") return;
        await send({ header: backend.header(response.revision), kv: toKeyValueMessage(event.kv) });
      }
    }
  } finally {
    watch.close();
  }
}
