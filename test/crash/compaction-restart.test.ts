import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { test } from "node:test";
import { CompactionRequestSchema, CompactionResponseSchema, PutRequestSchema, PutResponseSchema, RangeRequestSchema, RangeResponseSchema } from "../../src/gen/etcdserverpb/rpc_pb.js";
import { EtcdClient } from "../support/client.js";
import { startTetcd, temporaryDirectory, type ServerProcess } from "../support/processes.js";

const testTimeoutMs = 60_000;

async function put(client: EtcdClient, key: string, value: string): Promise<number> {
  const result = await client.kv.call("put", PutRequestSchema, { key: Buffer.from(key), value: Buffer.from(value) }, PutResponseSchema);
  assert.ok(result.ok, `put ${key}`);
  return Number(result.response.header!.revision);
}

async function get(client: EtcdClient, key: string): Promise<{ value: string; createRevision: number; modRevision: number; version: number }> {
  const result = await client.kv.call("range", RangeRequestSchema, { key: Buffer.from(key) }, RangeResponseSchema);
  assert.ok(result.ok, `range ${key}`);
  const kv = result.response.kvs[0];
  assert.ok(kv !== undefined, `${key} missing`);
  return { value: Buffer.from(kv.value).toString(), createRevision: Number(kv.createRevision), modRevision: Number(kv.modRevision), version: Number(kv.version) };
}

test("after a compaction and a SIGKILL, a key keeps its create revision and its version keeps counting", { timeout: testTimeoutMs }, async () => {
  const dataDir = temporaryDirectory("tetcd-compaction-restart");
  let server: ServerProcess | undefined;
  let client: EtcdClient | undefined;
  try {
    server = await startTetcd({ dataDir });
    client = new EtcdClient(server.endpoint);
    const created = await put(client, "compacted/key", "v1");
    await put(client, "compacted/key", "v2");
    const third = await put(client, "compacted/key", "v3");
    await put(client, "compacted/other", "o1");
    const compaction = await client.kv.call("compact", CompactionRequestSchema, { revision: BigInt(third), physical: true }, CompactionResponseSchema);
    assert.ok(compaction.ok, "compact");
    assert.deepEqual(await get(client, "compacted/key"), { value: "v3", createRevision: created, modRevision: third, version: 3 });
    client.close();
    client = undefined;
    await server.stop("SIGKILL");

    server = await startTetcd({ dataDir });
    client = new EtcdClient(server.endpoint);
    assert.deepEqual(await get(client, "compacted/key"), { value: "v3", createRevision: created, modRevision: third, version: 3 }, "as stored");
    const fourth = await put(client, "compacted/key", "v4");
    assert.deepEqual(await get(client, "compacted/key"), { value: "v4", createRevision: created, modRevision: fourth, version: 4 }, "the put after the restart");
  } finally {
    client?.close();
    await server?.stop("SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  }
});
