// Defragment beside etcd 3.4: the same history (large values written, then
// deleted and compacted) on both, `etcdctl defrag` prints the same line, and
// `endpoint status` reports a DB SIZE that shrank on both. tetcd keeps serving
// during the defragmentation (puts go on and are all there afterwards), and a
// restart after it finds every record.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import * as rpc from "../../src/gen/etcdserverpb/rpc_pb.js";
import { EtcdClient } from "../support/client.js";
import { etcdctl, hasCommand, startEtcd, startTetcd, temporaryDirectory, type ServerProcess } from "../support/processes.js";
import { rmSync } from "node:fs";

const bytes = (text: string): Buffer => Buffer.from(text);

async function fillAndFree(client: EtcdClient): Promise<void> {
  const value = Buffer.alloc(8192, 5);
  for (let batch = 0; batch < 10; batch++) {
    await Promise.all(Array.from({ length: 50 }, async (_, index) => {
      const put = await client.kv.call("put", rpc.PutRequestSchema, { key: bytes(`big/${batch * 50 + index}`), value });
      assert.ok(put.ok);
    }));
  }
  const deleted = await client.kv.call("deleteRange", rpc.DeleteRangeRequestSchema, { key: bytes("big/"), rangeEnd: bytes("big0") }, rpc.DeleteRangeResponseSchema);
  assert.ok(deleted.ok && deleted.response.deleted === 500n);
  assert.ok((await client.kv.call("compact", rpc.CompactionRequestSchema, { revision: deleted.response.header!.revision, physical: true })).ok);
}

function dbSize(endpoint: string): number {
  const status = etcdctl(endpoint, ["endpoint", "status", "-w", "json"]);
  assert.equal(status.status, 0, status.stderr);
  const size = /"dbSize":(\d+)/.exec(status.stdout)?.[1];
  assert.ok(size !== undefined, status.stdout);
  return Number(size);
}

describe("defragment beside etcd 3.4", { timeout: 120_000 }, () => {
  const servers = new Map<"etcd" | "tetcd", ServerProcess>();
  const dataDir = temporaryDirectory("tetcd-defrag");
  before(async () => {
    assert.ok(hasCommand("etcd") && hasCommand("etcdctl"), "etcd 3.4 and etcdctl must be installed");
    servers.set("etcd", await startEtcd());
    servers.set("tetcd", await startTetcd({ dataDir }));
  });
  after(async () => {
    for (const server of servers.values()) await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const server = (kind: "etcd" | "tetcd"): ServerProcess => {
    const found = servers.get(kind);
    assert.ok(found !== undefined);
    return found;
  };

  test("etcdctl defrag: the same output, and a smaller DB SIZE on both", async (context) => {
    const sizes: Record<string, { before: number; after: number }> = {};
    const outputs: Record<string, string> = {};
    for (const kind of ["etcd", "tetcd"] as const) {
      const client = new EtcdClient(server(kind).endpoint);
      try {
        await fillAndFree(client);
      } finally {
        client.close();
      }
      const before = dbSize(server(kind).endpoint);
      const defrag = etcdctl(server(kind).endpoint, ["defrag"]);
      assert.equal(defrag.status, 0, defrag.stderr);
      outputs[kind] = defrag.stdout.replace(server(kind).endpoint, "ENDPOINT");
      sizes[kind] = { before, after: dbSize(server(kind).endpoint) };
    }
    assert.equal(outputs.tetcd, outputs.etcd);
    assert.equal(outputs.tetcd, "Finished defragmenting etcd member[ENDPOINT]\n");
    for (const kind of ["etcd", "tetcd"]) {
      assert.ok(sizes[kind]!.after * 4 < sizes[kind]!.before, `${kind}: ${JSON.stringify(sizes[kind])}`);
    }
    context.diagnostic(`DB size before/after: ${JSON.stringify(sizes)}`);
  });

  test("puts made during a defragmentation are all there after it, and after a restart", async () => {
    let client = new EtcdClient(server("tetcd").endpoint);
    try {
      await fillAndFree(client);
      let running = true;
      let written = 0;
      const writer = (async () => {
        while (running) {
          const put = await client.kv.call("put", rpc.PutRequestSchema, { key: bytes(`during/${written}`), value: bytes(String(written)) });
          assert.ok(put.ok);
          written++;
        }
      })();
      const defragmented = await client.maintenance.call("defragment", rpc.DefragmentRequestSchema, {}, rpc.DefragmentResponseSchema);
      running = false;
      await writer;
      assert.ok(defragmented.ok, defragmented.ok ? "" : defragmented.message);
      assert.ok(written > 0);
      const check = async (): Promise<void> => {
        const all = await client.kv.call("range", rpc.RangeRequestSchema, { key: bytes("during/"), rangeEnd: bytes("during0") }, rpc.RangeResponseSchema);
        assert.ok(all.ok);
        assert.equal(all.response.kvs.length, written);
        for (const kv of all.response.kvs) assert.equal(Buffer.from(kv.value).toString(), Buffer.from(kv.key).toString().slice("during/".length));
      };
      await check();
      client.close();
      await server("tetcd").stop();
      servers.set("tetcd", await startTetcd({ dataDir }));
      client = new EtcdClient(server("tetcd").endpoint);
      await check();
    } finally {
      client.close();
    }
  });
});
