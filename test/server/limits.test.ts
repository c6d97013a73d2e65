import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import * as rpc from "../../src/gen/etcdserverpb/rpc_pb.js";
import { startEtcd, type Etcd } from "../../src/index.js";
import { EtcdClient } from "../support/client.js";
import { temporaryDirectory } from "../support/processes.js";

const text = new TextEncoder();
const bytes = (value: string): Uint8Array => text.encode(value);

async function withMember(args: string[], body: (client: EtcdClient, etcd: Etcd) => Promise<void>): Promise<void> {
  const dataDir = temporaryDirectory("tetcd-limits");
  const etcd = await startEtcd({ args: ["--data-dir", dataDir, "--listen-client-urls", "http://127.0.0.1:0", "--listen-peer-urls", "http://127.0.0.1:0", ...args] });
  const client = new EtcdClient(etcd.clientAddresses[0]!);
  try {
    await body(client, etcd);
  } finally {
    client.close();
    await etcd.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const get = (client: EtcdClient, key: string) => client.kv.call("range", rpc.RangeRequestSchema, { key: bytes(key) }, rpc.RangeResponseSchema);
const put = (client: EtcdClient, key: string, value: string | Uint8Array) =>
  client.kv.call("put", rpc.PutRequestSchema, { key: bytes(key), value: typeof value === "string" ? bytes(value) : value }, rpc.PutResponseSchema);

describe("a rejected request changes nothing", { timeout: 60_000 }, () => {
  test("a txn whose from-key delete removes the key a later ignore_lease put needs is refused whole", async () => {
    await withMember([], async (client) => {
      assert.ok((await put(client, "b", "1")).ok);
      assert.ok((await put(client, "d", "2")).ok);
      const before = await get(client, "b");
      const result = await client.kv.call("txn", rpc.TxnRequestSchema, {
        success: [
          { request: { case: "requestDeleteRange", value: { key: bytes("a"), rangeEnd: new Uint8Array([0]) } } },
          { request: { case: "requestPut", value: { key: bytes("d"), value: bytes("3"), ignoreLease: true } } },
        ],
      });
      assert.deepEqual(result.ok ? "ok" : [result.code, result.message], [3, "etcdserver: key not found"]);
      const after = await get(client, "b");
      assert.ok(before.ok && after.ok);
      assert.equal(after.response.kvs.length, 1, "the delete must not have happened");
      assert.equal(after.response.header!.revision, before.response.header!.revision);
    });
  });

  test("requests over --max-request-bytes are refused with etcd's error", async () => {
    await withMember(["--max-request-bytes", "1024"], async (client) => {
      const result = await put(client, "big", new Uint8Array(2048));
      assert.deepEqual(result.ok ? "ok" : [result.code, result.message], [3, "etcdserver: request is too large"]);
      const read = await get(client, "big");
      assert.ok(read.ok && read.response.kvs.length === 0);
    });
  });

  test("an unknown sort order or target is refused (etcd 3.4 crashes on it)", async () => {
    await withMember([], async (client) => {
      for (const options of [{ sortTarget: 7, sortOrder: 1 }, { sortOrder: 5 }]) {
        const result = await client.kv.call("range", rpc.RangeRequestSchema, { key: bytes("a"), ...options }, rpc.RangeResponseSchema);
        assert.deepEqual(result.ok ? "ok" : [result.code, result.message], [3, "etcdserver: invalid sort option"]);
      }
    });
  });

  test("more than --max-txn-ops operations are refused", async () => {
    await withMember(["--max-txn-ops", "4"], async (client) => {
      const ops = Array.from({ length: 5 }, (_, index) => ({ request: { case: "requestPut" as const, value: { key: bytes(`k${index}`), value: bytes("v") } } }));
      const result = await client.kv.call("txn", rpc.TxnRequestSchema, { success: ops });
      assert.deepEqual(result.ok ? "ok" : [result.code, result.message], [3, "etcdserver: too many operations in txn request"]);
    });
  });
});

describe("backend quota", { timeout: 120_000 }, () => {
  let client: EtcdClient;
  let etcd: Etcd;
  let dataDir: string;
  before(async () => {
    dataDir = temporaryDirectory("tetcd-quota");
    etcd = await startEtcd({ args: ["--data-dir", dataDir, "--listen-client-urls", "http://127.0.0.1:0", "--listen-peer-urls", "http://127.0.0.1:0", "--quota-backend-bytes", String(256 * 1024)] });
    client = new EtcdClient(etcd.clientAddresses[0]!);
  });
  after(async () => {
    client.close();
    await etcd.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test("past the quota, writes fail with NOSPACE while reads, deletes and compaction work; a defragmentation brings the file under it again", async () => {
    let failure: { code: number; message: string } | undefined;
    for (let index = 0; index < 1000 && failure === undefined; index++) {
      const result = await put(client, `key/${index}`, new Uint8Array(4096));
      if (!result.ok) failure = result;
    }
    assert.deepEqual(failure, { ok: false, code: 8, message: "etcdserver: mvcc: database space exceeded" });
    const alarms = await client.maintenance.call("alarm", rpc.AlarmRequestSchema, { action: rpc.AlarmRequest_AlarmAction.GET }, rpc.AlarmResponseSchema);
    assert.ok(alarms.ok);
    assert.deepEqual(
      alarms.response.alarms.map((alarm) => [alarm.memberID, alarm.alarm]),
      [[etcd.server.memberId, rpc.AlarmType.NOSPACE]],
    );
    // The alarm holds even for a small write that would fit.
    const small = await put(client, "small", "x");
    assert.ok(!small.ok && small.message === "etcdserver: mvcc: database space exceeded");
    const read = await get(client, "key/0");
    assert.ok(read.ok && read.response.kvs.length === 1);
    const deleted = await client.kv.call("deleteRange", rpc.DeleteRangeRequestSchema, { key: bytes("key/"), rangeEnd: bytes("key0") }, rpc.DeleteRangeResponseSchema);
    assert.ok(deleted.ok && deleted.response.deleted > 0n);
    const compacted = await client.kv.call("compact", rpc.CompactionRequestSchema, { revision: deleted.response.header!.revision, physical: true });
    assert.ok(compacted.ok);
    // Compaction freed pages inside the file; the quota is measured against the
    // file, as etcd's, so a defragmentation must give them back first.
    const sizeOf = async (): Promise<bigint> => {
      const status = await client.maintenance.call("status", rpc.StatusRequestSchema, {}, rpc.StatusResponseSchema);
      assert.ok(status.ok);
      return status.response.dbSize;
    };
    const before = await sizeOf();
    const defragmented = await client.maintenance.call("defragment", rpc.DefragmentRequestSchema, {}, rpc.DefragmentResponseSchema);
    assert.ok(defragmented.ok, defragmented.ok ? "" : defragmented.message);
    const after = await sizeOf();
    assert.ok(after < before / 2n, `DB size ${before} before the defragmentation, ${after} after`);
    const disarmed = await client.maintenance.call("alarm", rpc.AlarmRequestSchema, { action: rpc.AlarmRequest_AlarmAction.DEACTIVATE, memberID: etcd.server.memberId, alarm: rpc.AlarmType.NOSPACE });
    assert.ok(disarmed.ok);
    const written = await put(client, "after", "x");
    assert.ok(written.ok, `a write after compaction, defragmentation and disarm: ${written.ok ? "" : written.message}`);
  });
});
