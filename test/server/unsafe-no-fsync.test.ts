// --unsafe-no-fsync (for tests, as etcd's): the member serves as usual, and
// what it wrote is there after a clean stop and a restart without the flag.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { describe, test } from "node:test";
import * as rpc from "../../src/gen/etcdserverpb/rpc_pb.js";
import { EtcdClient } from "../support/client.js";
import { startTetcd, temporaryDirectory } from "../support/processes.js";

describe("--unsafe-no-fsync", { timeout: 60_000 }, () => {
  test("writes are served, and kept across a clean stop and a restart", async () => {
    const dataDir = temporaryDirectory("tetcd-nofsync");
    try {
      const first = await startTetcd({ dataDir, extraArgs: ["--unsafe-no-fsync"] });
      let client = new EtcdClient(first.endpoint);
      try {
        await Promise.all(Array.from({ length: 200 }, async (_, index) => assert.ok((await client.kv.call("put", rpc.PutRequestSchema, { key: Buffer.from(`k${index}`), value: Buffer.from(`v${index}`) })).ok)));
      } finally {
        client.close();
        await first.stop();
      }
      const second = await startTetcd({ dataDir });
      client = new EtcdClient(second.endpoint);
      try {
        const all = await client.kv.call("range", rpc.RangeRequestSchema, { key: Buffer.from("k"), rangeEnd: Buffer.from("l") }, rpc.RangeResponseSchema);
        assert.ok(all.ok);
        assert.equal(all.response.kvs.length, 200);
        assert.equal(Number(all.response.header!.revision), 201);
      } finally {
        client.close();
        await second.stop();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
