import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { describe, test } from "node:test";
import * as rpc from "../../src/gen/etcdserverpb/rpc_pb.js";
import { startEtcd } from "../../src/index.js";
import { EtcdClient } from "../support/client.js";
import { startTetcd, temporaryDirectory } from "../support/processes.js";
import { keepAlive } from "../support/streams.js";

const text = new TextEncoder();
const bytes = (value: string): Uint8Array => text.encode(value);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function withMember(body: (client: EtcdClient, endpoint: string) => Promise<void>): Promise<void> {
  const dataDir = temporaryDirectory("tetcd-lease");
  const etcd = await startEtcd({ args: ["--data-dir", dataDir, "--listen-client-urls", "http://127.0.0.1:0", "--listen-peer-urls", "http://127.0.0.1:0"] });
  const client = new EtcdClient(etcd.clientAddresses[0]!);
  try {
    await body(client, etcd.clientAddresses[0]!);
  } finally {
    client.close();
    await etcd.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function timeToLive(client: EtcdClient, id: bigint): Promise<rpc.LeaseTimeToLiveResponse> {
  const result = await client.lease.call("leaseTimeToLive", rpc.LeaseTimeToLiveRequestSchema, { ID: id, keys: true }, rpc.LeaseTimeToLiveResponseSchema);
  assert.ok(result.ok);
  return result.response;
}

describe("lease expiry on a single member", { timeout: 120_000 }, () => {
  test("an expired lease's keys are deleted together, in one revision", async () => {
    await withMember(async (client) => {
      assert.ok((await client.lease.call("leaseGrant", rpc.LeaseGrantRequestSchema, { ID: 7n, TTL: 2n })).ok);
      for (const key of ["x1", "x2", "x3"]) assert.ok((await client.kv.call("put", rpc.PutRequestSchema, { key: bytes(key), value: bytes("v"), lease: 7n })).ok);
      const before = await client.kv.call("range", rpc.RangeRequestSchema, { key: bytes("x"), rangeEnd: bytes("y") }, rpc.RangeResponseSchema);
      assert.ok(before.ok && before.response.kvs.length === 3);
      let count = 3n;
      const deadline = Date.now() + 10_000;
      while (count > 0n && Date.now() < deadline) {
        await sleep(100);
        const now = await client.kv.call("range", rpc.RangeRequestSchema, { key: bytes("x"), rangeEnd: bytes("y"), countOnly: true }, rpc.RangeResponseSchema);
        assert.ok(now.ok);
        count = now.response.count;
        assert.ok(count === 3n || count === 0n, `keys vanish together, not one by one (saw ${count})`);
      }
      assert.equal(count, 0n);
      const after = await client.kv.call("range", rpc.RangeRequestSchema, { key: bytes("x"), rangeEnd: bytes("y"), countOnly: true }, rpc.RangeResponseSchema);
      assert.ok(after.ok);
      assert.equal(after.response.header!.revision, before.response.header!.revision + 1n, "one revision deleted all three keys");
      assert.equal((await timeToLive(client, 7n)).TTL, -1n);
    });
  });

  test("a lease kept alive outlives its TTL", async () => {
    await withMember(async (client, endpoint) => {
      assert.ok((await client.lease.call("leaseGrant", rpc.LeaseGrantRequestSchema, { ID: 8n, TTL: 2n })).ok);
      assert.ok((await client.kv.call("put", rpc.PutRequestSchema, { key: bytes("alive"), value: bytes("v"), lease: 8n })).ok);
      for (let round = 0; round < 8; round++) {
        await sleep(500);
        const [answer] = await keepAlive(endpoint, [8n]);
        assert.equal(answer!.TTL, 2n);
      }
      const lease = await timeToLive(client, 8n);
      assert.equal(lease.grantedTTL, 2n);
      assert.deepEqual(lease.keys.map((key) => Buffer.from(key).toString()), ["alive"]);
    });
  });

  test("thousands of leases expiring at once are all revoked while writes go on", async () => {
    await withMember(async (client) => {
      const leases = 3000;
      const ids = Array.from({ length: leases }, (_, index) => BigInt(10_000 + index));
      for (let first = 0; first < leases; first += 100) {
        await Promise.all(ids.slice(first, first + 100).map((ID) => client.lease.call("leaseGrant", rpc.LeaseGrantRequestSchema, { ID, TTL: 2n })));
      }
      await Promise.all(ids.slice(0, 500).map((lease, index) => client.kv.call("put", rpc.PutRequestSchema, { key: bytes(`storm/${index}`), value: bytes("v"), lease })));
      let writes = 0;
      const deadline = Date.now() + 30_000;
      let remaining = leases;
      while (remaining > 0 && Date.now() < deadline) {
        const put = await client.kv.call("put", rpc.PutRequestSchema, { key: bytes("steady"), value: bytes(String(writes)) });
        assert.ok(put.ok, "writes succeed during the expiry storm");
        writes++;
        if (writes % 50 === 0) {
          const listed = await client.lease.call("leaseLeases", rpc.LeaseLeasesRequestSchema, {}, rpc.LeaseLeasesResponseSchema);
          assert.ok(listed.ok);
          remaining = listed.response.leases.length;
        }
      }
      assert.equal(remaining, 0, "every expired lease is revoked");
      const storm = await client.kv.call("range", rpc.RangeRequestSchema, { key: bytes("storm/"), rangeEnd: bytes("storm0"), countOnly: true }, rpc.RangeResponseSchema);
      assert.ok(storm.ok && storm.response.count === 0n);
      assert.ok(writes > 0);
    });
  });
});

describe("leases across a restart", { timeout: 60_000 }, () => {
  test("a lease survives kill -9 with its keys and gets its full TTL again", async () => {
    const dataDir = temporaryDirectory("tetcd-lease-restart");
    try {
      let server = await startTetcd({ dataDir });
      let client = new EtcdClient(server.endpoint);
      assert.ok((await client.lease.call("leaseGrant", rpc.LeaseGrantRequestSchema, { ID: 77n, TTL: 30n })).ok);
      assert.ok((await client.kv.call("put", rpc.PutRequestSchema, { key: bytes("svc"), value: bytes("up"), lease: 77n })).ok);
      client.close();
      await server.stop("SIGKILL");
      server = await startTetcd({ dataDir });
      client = new EtcdClient(server.endpoint);
      try {
        const lease = await timeToLive(client, 77n);
        assert.equal(lease.grantedTTL, 30n);
        assert.ok(lease.TTL >= 28n && lease.TTL <= 30n, `remaining ${lease.TTL}`);
        assert.deepEqual(lease.keys.map((key) => Buffer.from(key).toString()), ["svc"]);
        const revoked = await client.lease.call("leaseRevoke", rpc.LeaseRevokeRequestSchema, { ID: 77n });
        assert.ok(revoked.ok);
        const read = await client.kv.call("range", rpc.RangeRequestSchema, { key: bytes("svc") }, rpc.RangeResponseSchema);
        assert.ok(read.ok && read.response.kvs.length === 0, "revoking the restored lease deletes its key");
      } finally {
        client.close();
        await server.stop();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe("lease checkpoints", { timeout: 60_000 }, () => {
  async function remainingAfterRestart(extraArgs: string[]): Promise<bigint> {
    const dataDir = temporaryDirectory("tetcd-lease-checkpoint");
    try {
      let server = await startTetcd({ dataDir, extraArgs });
      let client = new EtcdClient(server.endpoint);
      assert.ok((await client.lease.call("leaseGrant", rpc.LeaseGrantRequestSchema, { ID: 88n, TTL: 30n })).ok);
      // Let at least two checkpoints (every second) record a remaining TTL below 30.
      await sleep(3500);
      client.close();
      await server.stop("SIGKILL");
      server = await startTetcd({ dataDir, extraArgs });
      client = new EtcdClient(server.endpoint);
      try {
        const lease = await timeToLive(client, 88n);
        assert.equal(lease.grantedTTL, 30n);
        return lease.TTL;
      } finally {
        client.close();
        await server.stop();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }

  test("with checkpoints, a restart resumes a lease at its remaining TTL; without, at its full TTL", async () => {
    const withCheckpoints = await remainingAfterRestart(["--experimental-enable-lease-checkpoint", "--experimental-lease-checkpoint-interval", "1s"]);
    assert.ok(withCheckpoints >= 24n && withCheckpoints <= 28n, `remaining ${withCheckpoints} after about 3.5 s of a 30 s lease`);
    const without = await remainingAfterRestart([]);
    assert.ok(without >= 29n, `remaining ${without}: the full TTL again`);
  });

  test("a keep-alive clears the recorded remaining TTL", async () => {
    const dataDir = temporaryDirectory("tetcd-lease-checkpoint-renew");
    // The first checkpoint, 3 s after the start, records about 58 s left of a 60 s
    // lease; the keep-alive and the kill both come before the next one, at 6 s.
    const extraArgs = ["--experimental-enable-lease-checkpoint", "--experimental-lease-checkpoint-interval", "3s"];
    try {
      let server = await startTetcd({ dataDir, extraArgs });
      let client = new EtcdClient(server.endpoint);
      assert.ok((await client.lease.call("leaseGrant", rpc.LeaseGrantRequestSchema, { ID: 89n, TTL: 60n })).ok);
      await sleep(3600);
      const [answer] = await keepAlive(server.endpoint, [89n]);
      assert.equal(answer!.TTL, 60n);
      await sleep(200);
      client.close();
      await server.stop("SIGKILL");
      server = await startTetcd({ dataDir, extraArgs });
      client = new EtcdClient(server.endpoint);
      try {
        const lease = await timeToLive(client, 89n);
        assert.ok(lease.TTL >= 59n, `remaining ${lease.TTL}: the keep-alive restarted the lease (an uncleared checkpoint would give about 57)`);
      } finally {
        client.close();
        await server.stop();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
