// What the member writes to its WAL, in which order: a write torn at a record
// boundary (power lost mid-write) must never keep a hard state whose commit
// reaches past the entries that were lost with it.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { PutRequestSchema, PutResponseSchema } from "../../src/gen/etcdserverpb/rpc_pb.js";
import { startEtcd } from "../../src/server/embed.js";
import { WalRecordType } from "../../src/server/wal-records.js";
import type { WalRecord } from "../../src/wal/record.js";
import { Wal } from "../../src/wal/wal.js";
import { EtcdClient } from "../support/client.js";

test("every WAL write puts a Ready's entries before its hard state", { timeout: 30_000 }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "tetcd-wal-order-"));
  const writes: number[][] = [];
  const append = Wal.prototype.append;
  Wal.prototype.append = function (this: Wal, records: WalRecord[]) {
    writes.push(records.map((record) => record.type));
    return append.call(this, records);
  };
  try {
    const etcd = await startEtcd({ args: ["--data-dir", dataDir, "--listen-client-urls", "http://127.0.0.1:0", "--listen-peer-urls", "http://127.0.0.1:0"] });
    const client = new EtcdClient(etcd.clientAddresses[0]!);
    try {
      await Promise.all(Array.from({ length: 64 }, (_, n) => client.kv.call("put", PutRequestSchema, { key: Buffer.from(`k${n}`), value: Buffer.from("v") }, PutResponseSchema)));
    } finally {
      client.close();
      await etcd.close();
    }
  } finally {
    Wal.prototype.append = append;
    rmSync(dataDir, { recursive: true, force: true });
  }
  const withEntries = writes.filter((types) => types.includes(WalRecordType.entry));
  assert.ok(withEntries.length > 0, "no entries were written");
  for (const types of withEntries) {
    const lastEntry = types.lastIndexOf(WalRecordType.entry);
    const firstHardState = types.indexOf(WalRecordType.hardState);
    assert.ok(firstHardState === -1 || firstHardState > lastEntry, `a hard state before entries in one write: ${types.join(",")}`);
  }
});
