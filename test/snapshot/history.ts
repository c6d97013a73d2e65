import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as rpc from "../../src/gen/etcdserverpb/rpc_pb.js";
import type { EtcdClient } from "../support/client.js";

/** The lease every snapshot test attaches keys to: an id given by the client, so both servers hold the same bytes. */
export const historyLeaseId = 0x1234n;
/** Keys written by the history. */
export const historyKeyCount = 1200;

const bytes = (text: string): Uint8Array => Buffer.from(text);

function valueOf(index: number, round: number): Uint8Array {
  // Most values are small; every 97th spans overflow pages.
  const length = index % 97 === 0 ? 9000 : 10 + ((index * 7 + round) % 90);
  return Buffer.alloc(length, `${round}:${index};`);
}

/**
 * The same history for etcd and tetcd, call by call: a lease with keys, puts
 * over many pages (some values over overflow pages), overwrites, deletes, and
 * a compaction. Returns the revision compacted at.
 */
export async function applyHistory(client: EtcdClient): Promise<number> {
  assert.ok((await client.lease.call("leaseGrant", rpc.LeaseGrantRequestSchema, { ID: historyLeaseId, TTL: 3600n })).ok);
  for (let index = 0; index < historyKeyCount; index++) {
    const lease = index % 50 === 0 ? historyLeaseId : 0n;
    const put = await client.kv.call("put", rpc.PutRequestSchema, { key: bytes(`key/${String(index).padStart(5, "0")}`), value: valueOf(index, 0), lease });
    assert.ok(put.ok, put.ok ? "" : put.message);
  }
  for (let index = 0; index < historyKeyCount; index += 3) {
    assert.ok((await client.kv.call("put", rpc.PutRequestSchema, { key: bytes(`key/${String(index).padStart(5, "0")}`), value: valueOf(index, 1) })).ok);
  }
  const compactAt = await currentRevision(client);
  for (let index = 1; index < historyKeyCount; index += 7) {
    assert.ok((await client.kv.call("deleteRange", rpc.DeleteRangeRequestSchema, { key: bytes(`key/${String(index).padStart(5, "0")}`) })).ok);
  }
  assert.ok((await client.kv.call("compact", rpc.CompactionRequestSchema, { revision: BigInt(compactAt), physical: true })).ok);
  for (let index = 0; index < 20; index++) assert.ok((await client.kv.call("put", rpc.PutRequestSchema, { key: bytes(`late/${index}`), value: valueOf(index, 2) })).ok);
  return compactAt;
}

export async function currentRevision(client: EtcdClient): Promise<number> {
  const result = await client.kv.call("range", rpc.RangeRequestSchema, { key: bytes("x"), countOnly: true }, rpc.RangeResponseSchema);
  assert.ok(result.ok);
  return Number(result.response.header!.revision);
}

export interface StoreDump {
  revision: number;
  kvs: Array<{ key: string; value: string; createRevision: string; modRevision: string; version: string; lease: string }>;
  /** The keys of the history's lease. */
  leaseKeys: string[];
  /** What a read below the compaction revision gets. */
  belowCompaction: string;
  /** What a read at the compaction revision counts. */
  atCompactionCount: number;
}

/** Every key-value with its revisions, the lease's keys, and how reads around the compaction point fare. */
export async function dumpStore(client: EtcdClient, compactAt: number): Promise<StoreDump> {
  const all = await client.kv.call("range", rpc.RangeRequestSchema, { key: Buffer.from([0]), rangeEnd: Buffer.from([0]) }, rpc.RangeResponseSchema);
  assert.ok(all.ok, all.ok ? "" : all.message);
  const kvs = all.response.kvs.map((kv) => ({
    key: Buffer.from(kv.key).toString(),
    value: Buffer.from(kv.value).toString("base64"),
    createRevision: String(kv.createRevision),
    modRevision: String(kv.modRevision),
    version: String(kv.version),
    lease: String(kv.lease),
  }));
  const lease = await client.lease.call("leaseTimeToLive", rpc.LeaseTimeToLiveRequestSchema, { ID: historyLeaseId, keys: true }, rpc.LeaseTimeToLiveResponseSchema);
  assert.ok(lease.ok, lease.ok ? "" : lease.message);
  const below = await client.kv.call("range", rpc.RangeRequestSchema, { key: bytes("key/"), rangeEnd: bytes("key0"), revision: BigInt(compactAt - 1) }, rpc.RangeResponseSchema);
  const at = await client.kv.call("range", rpc.RangeRequestSchema, { key: bytes("key/"), rangeEnd: bytes("key0"), revision: BigInt(compactAt), countOnly: true }, rpc.RangeResponseSchema);
  assert.ok(at.ok, at.ok ? "" : at.message);
  return {
    revision: Number(all.response.header!.revision),
    kvs,
    leaseKeys: lease.response.keys.map((key) => Buffer.from(key).toString()).sort(),
    belowCompaction: below.ok ? "read" : `${below.code} ${below.message}`,
    atCompactionCount: Number(at.response.count),
  };
}

/** Asserts two dumps equal, naming the first record that differs. */
export function assertSameStore(actual: StoreDump, expected: StoreDump, what: string): void {
  assert.equal(actual.revision, expected.revision, `${what}: revision`);
  assert.equal(actual.kvs.length, expected.kvs.length, `${what}: key count`);
  for (const [index, kv] of expected.kvs.entries()) assert.deepEqual(actual.kvs[index], kv, `${what}: record ${index} (${kv.key})`);
  assert.deepEqual(actual.leaseKeys, expected.leaseKeys, `${what}: the lease's keys`);
  assert.equal(actual.belowCompaction, expected.belowCompaction, `${what}: a read below the compaction revision`);
  assert.equal(actual.atCompactionCount, expected.atCompactionCount, `${what}: a read at the compaction revision`);
}

/** `etcdctl snapshot save` to `path`; its output. */
export function saveSnapshot(endpoint: string, path: string): string {
  const result = spawnSync("etcdctl", [`--endpoints=${endpoint}`, "snapshot", "save", path], { encoding: "utf8", timeout: 60_000, env: { ...process.env, ETCDCTL_API: "3" } });
  assert.equal(result.status, 0, result.stderr);
  return result.stdout;
}
