import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { DescMessage } from "@bufbuild/protobuf";
import * as rpc from "../../src/gen/etcdserverpb/rpc_pb.js";
import { comparable } from "../support/compare.js";
import { EtcdClient } from "../support/client.js";
import { startEtcd, startTetcd, type ServerProcess } from "../support/processes.js";
import { keepAlive } from "../support/streams.js";

/**
 * The lease API against etcd 3.4: the same requests, with client-chosen lease
 * ids, to a fresh tetcd and a fresh etcd. Responses must be equal, ids and
 * raft term aside; a remaining TTL may differ by the second that passes
 * between the two calls.
 */
const text = new TextEncoder();
const bytes = (value: string): Uint8Array => text.encode(value);


describe("Lease API against etcd 3.4", { timeout: 120_000 }, () => {
  let tetcd: ServerProcess;
  let etcd: ServerProcess;
  let clients: [EtcdClient, EtcdClient];

  before(async () => {
    [tetcd, etcd] = await Promise.all([startTetcd(), startEtcd()]);
    clients = [new EtcdClient(tetcd.endpoint), new EtcdClient(etcd.endpoint)];
  });
  after(async () => {
    for (const client of clients ?? []) client.close();
    await Promise.all([tetcd?.stop(), etcd?.stop()]);
  });

  async function both(service: "kv" | "lease", method: string, requestSchema: DescMessage, request: Record<string, unknown>, responseSchema: DescMessage) {
    const [ours, theirs] = await Promise.all(clients.map((client) => client[service].call(method, requestSchema, request as never, responseSchema)));
    return [comparable(ours!, responseSchema), comparable(theirs!, responseSchema)] as const;
  }

  async function same(service: "kv" | "lease", method: string, requestSchema: DescMessage, request: Record<string, unknown>, responseSchema: DescMessage): Promise<Record<string, unknown>> {
    const [ours, theirs] = await both(service, method, requestSchema, request, responseSchema);
    assert.deepEqual(ours, theirs, `${method} ${JSON.stringify(request, (_, value: unknown) => (typeof value === "bigint" ? value.toString() : value))}`);
    return ours;
  }

  const grant = (ID: bigint, TTL: bigint) => same("lease", "leaseGrant", rpc.LeaseGrantRequestSchema, { ID, TTL }, rpc.LeaseGrantResponseSchema);
  const put = (key: string, lease: bigint) => same("kv", "put", rpc.PutRequestSchema, { key: bytes(key), value: bytes("v"), lease }, rpc.PutResponseSchema);

  test("grant: minimum TTL, too large a TTL, an id taken", async () => {
    assert.equal((await grant(101n, 60n))["TTL"], "60");
    assert.equal((await grant(102n, 1n))["TTL"], "2", "TTLs below the minimum are raised to it");
    assert.equal((await grant(103n, 0n))["TTL"], "2");
    assert.deepEqual(await grant(104n, 9_000_000_001n), { code: 11, message: "etcdserver: too large lease TTL" });
    assert.deepEqual(await grant(101n, 60n), { code: 9, message: "etcdserver: lease already exists" });
  });

  test("keys attach to a lease, move between leases and detach", async () => {
    await put("a", 101n);
    await put("b", 101n);
    await put("c", 101n);
    await put("c", 0n);
    await same("kv", "put", rpc.PutRequestSchema, { key: bytes("b"), value: bytes("w"), ignoreLease: true }, rpc.PutResponseSchema);
    assert.deepEqual(await put("d", 999n), { code: 5, message: "etcdserver: requested lease not found" });
    const [ours, theirs] = await both("lease", "leaseTimeToLive", rpc.LeaseTimeToLiveRequestSchema, { ID: 101n, keys: true }, rpc.LeaseTimeToLiveResponseSchema);
    const ttlOurs = Number(ours["TTL"]);
    const ttlTheirs = Number(theirs["TTL"]);
    assert.ok(Math.abs(ttlOurs - ttlTheirs) <= 1 && ttlOurs > 55, `remaining TTL ${ttlOurs} vs ${ttlTheirs}`);
    delete ours["TTL"];
    delete theirs["TTL"];
    assert.deepEqual({ ...ours, keys: (ours["keys"] as string[]).sort() }, { ...theirs, keys: (theirs["keys"] as string[]).sort() });
    assert.deepEqual((ours["keys"] as string[]).map((key) => Buffer.from(key, "base64").toString()).sort(), ["a", "b"]);
  });

  test("time-to-live and keep-alive of a lease that does not exist", async () => {
    const unknown = await same("lease", "leaseTimeToLive", rpc.LeaseTimeToLiveRequestSchema, { ID: 4660n }, rpc.LeaseTimeToLiveResponseSchema);
    assert.equal(unknown["TTL"], "-1");
    const [ours, theirs] = await Promise.all([keepAlive(tetcd.endpoint, [101n, 4660n]), keepAlive(etcd.endpoint, [101n, 4660n])]);
    const plain = (responses: rpc.LeaseKeepAliveResponse[]) => responses.map((response) => [response.ID, response.TTL, response.header?.revision]);
    assert.deepEqual(plain(ours), plain(theirs));
    assert.deepEqual(plain(ours).map(([id, ttl]) => [id, ttl]), [
      [101n, 60n],
      [4660n, 0n],
    ]);
  });

  test("leases are listed", async () => {
    const [ours, theirs] = await both("lease", "leaseLeases", rpc.LeaseLeasesRequestSchema, {}, rpc.LeaseLeasesResponseSchema);
    const ids = (json: Record<string, unknown>) => (json["leases"] as Array<{ ID: string }>).map((lease) => lease.ID).sort();
    assert.deepEqual(ids(ours), ids(theirs));
    assert.deepEqual(ids(ours), ["101", "102", "103"]);
  });

  test("revoke deletes every attached key in one revision", async () => {
    const revoked = await same("lease", "leaseRevoke", rpc.LeaseRevokeRequestSchema, { ID: 101n }, rpc.LeaseRevokeResponseSchema);
    const revision = (revoked["header"] as { revision: string }).revision;
    const range = await same("kv", "range", rpc.RangeRequestSchema, { key: bytes("a"), rangeEnd: bytes("z") }, rpc.RangeResponseSchema);
    assert.deepEqual((range["kvs"] as Array<{ key: string }>).map((kv) => Buffer.from(kv.key, "base64").toString()), ["c"]);
    const history = await same("kv", "range", rpc.RangeRequestSchema, { key: bytes("a"), rangeEnd: bytes("c"), revision: BigInt(revision) - 1n }, rpc.RangeResponseSchema);
    assert.equal((history["kvs"] as unknown[]).length, 2, "both keys lived until the revoke's revision");
    assert.deepEqual(await same("lease", "leaseRevoke", rpc.LeaseRevokeRequestSchema, { ID: 101n }, rpc.LeaseRevokeResponseSchema), {
      code: 5,
      message: "etcdserver: requested lease not found",
    });
  });

  test("a lease that is not kept alive expires with its keys, on both", async () => {
    await grant(201n, 2n);
    await put("e1", 201n);
    await put("e2", 201n);
    const deadline = Date.now() + 15_000;
    let gone: [boolean, boolean] = [false, false];
    while (Date.now() < deadline && !(gone[0] && gone[1])) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      const [ours, theirs] = await both("kv", "range", rpc.RangeRequestSchema, { key: bytes("e"), rangeEnd: bytes("f"), countOnly: true }, rpc.RangeResponseSchema);
      gone = [ours["count"] === undefined, theirs["count"] === undefined];
    }
    assert.deepEqual(gone, [true, true], "the keys of an expired lease are deleted");
    await same("lease", "leaseTimeToLive", rpc.LeaseTimeToLiveRequestSchema, { ID: 201n }, rpc.LeaseTimeToLiveResponseSchema);
  });
});
