// Maintenance.Hash over a three-member cluster: members that applied the same
// entries give the same hash of their whole backend (their own ids aside), and
// a write changes it.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import * as rpc from "../../src/gen/etcdserverpb/rpc_pb.js";
import { EtcdClient } from "../support/client.js";
import { startCluster, type Cluster } from "../support/cluster.js";

async function hashes(cluster: Cluster): Promise<Array<{ hash: number; revision: bigint }>> {
  const results = [];
  for (const member of cluster.members) {
    const client = new EtcdClient(member.endpoint);
    try {
      // Hash reads the member's own backend: wait until it applied the last write.
      for (let attempt = 0; ; attempt++) {
        const result = await client.maintenance.call("hash", rpc.HashRequestSchema, {}, rpc.HashResponseSchema);
        assert.ok(result.ok, result.ok ? "" : result.message);
        const linearizable = await client.kv.call("range", rpc.RangeRequestSchema, { key: Buffer.from("x"), countOnly: true }, rpc.RangeResponseSchema);
        assert.ok(linearizable.ok);
        if (result.response.header!.revision === linearizable.response.header!.revision || attempt > 50) {
          results.push({ hash: result.response.hash, revision: result.response.header!.revision });
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } finally {
      client.close();
    }
  }
  return results;
}

describe("Maintenance.Hash in a cluster", { timeout: 60_000 }, () => {
  let cluster: Cluster | undefined;
  before(async () => {
    cluster = await startCluster("tetcd", 3);
  });
  after(async () => {
    await cluster?.stop();
  });

  test("equal on every member after the same entries; a write changes it", async () => {
    assert.ok(cluster !== undefined);
    const client = new EtcdClient(cluster.members[0]!.endpoint);
    try {
      for (let index = 0; index < 100; index++) assert.ok((await client.kv.call("put", rpc.PutRequestSchema, { key: Buffer.from(`k${index % 30}`), value: Buffer.from(`v${index}`) })).ok);
      assert.ok((await client.kv.call("compact", rpc.CompactionRequestSchema, { revision: 50n, physical: true })).ok);
      const first = await hashes(cluster);
      assert.equal(new Set(first.map((result) => `${result.hash}@${result.revision}`)).size, 1, first.map((result) => `${result.hash}@${result.revision}`).join(" "));
      assert.ok((await client.kv.call("put", rpc.PutRequestSchema, { key: Buffer.from("k0"), value: Buffer.from("changed") })).ok);
      const second = await hashes(cluster);
      assert.equal(new Set(second.map((result) => `${result.hash}@${result.revision}`)).size, 1, second.map((result) => `${result.hash}@${result.revision}`).join(" "));
      assert.notEqual(second[0]!.hash, first[0]!.hash);
    } finally {
      client.close();
    }
  });
});
