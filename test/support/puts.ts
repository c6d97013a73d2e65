// Puts made one by one against a tetcd process, and checks that they are all there after a restart.
import assert from "node:assert/strict";
import { PutRequestSchema, PutResponseSchema, RangeRequestSchema, RangeResponseSchema } from "../../src/gen/etcdserverpb/rpc_pb.js";
import { EtcdClient } from "./client.js";
import { startTetcd } from "./processes.js";

export interface Put {
  key: string;
  value: string;
  revision: number;
}

/** Starts tetcd on `dataDir` (with `extraArgs`), makes `count` puts one after another, and stops it with `signal`. */
export async function populate(dataDir: string, count: number, prefix: string, signal: NodeJS.Signals, extraArgs: string[] = []): Promise<Put[]> {
  const server = await startTetcd({ dataDir, extraArgs });
  const client = new EtcdClient(server.endpoint);
  try {
    const puts: Put[] = [];
    for (let index = 0; index < count; index++) {
      const key = `${prefix}/${index % 7}`;
      const value = `${prefix}-value-${index}-${"x".repeat(index % 50)}`;
      const result = await client.kv.call("put", PutRequestSchema, { key: Buffer.from(key), value: Buffer.from(value) }, PutResponseSchema);
      assert.ok(result.ok, `put ${key}`);
      puts.push({ key, value, revision: Number(result.response.header!.revision) });
    }
    return puts;
  } finally {
    client.close();
    await server.stop(signal);
  }
}

/** Checks that each put is readable at its revision, with its value. */
export async function assertPresent(client: EtcdClient, puts: Put[]): Promise<void> {
  for (const put of puts) {
    const result = await client.kv.call("range", RangeRequestSchema, { key: Buffer.from(put.key), revision: BigInt(put.revision) }, RangeResponseSchema);
    assert.ok(result.ok, `range ${put.key}@${put.revision}: ${result.ok ? "" : result.message}`);
    const kv = result.response.kvs[0];
    assert.ok(kv !== undefined, `${put.key}@${put.revision} missing`);
    assert.equal(Buffer.from(kv.value).toString(), put.value);
    assert.equal(Number(kv.modRevision), put.revision);
  }
}
