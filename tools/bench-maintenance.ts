// Maintenance under load, tetcd beside etcd in one run: the longest pause a
// put sees while the backend is defragmented (half its records deleted and
// compacted first) (and the file's size before and
// after), and the put latency while a snapshot is streamed to etcdctl under a
// 64-client put load, with the snapshot checked to be one point in time.
//
//   npm run build && node dist/tools/bench-maintenance.js --megabytes 256 --load-seconds 8
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as rpc from "../src/gen/etcdserverpb/rpc_pb.js";
import { BboltReader } from "../src/snapshot/bbolt-reader.js";
import { EtcdClient } from "../test/support/client.js";
import { etcdInstalled, quantile, startBenchServer } from "./bench/servers.js";

const valueBytes = 4096;

function option(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  return index < 0 ? fallback : Number(process.argv[index + 1]);
}

async function timedPut(client: EtcdClient, key: string, value: Uint8Array): Promise<number> {
  const started = performance.now();
  const result = await client.kv.call("put", rpc.PutRequestSchema, { key: Buffer.from(key), value });
  if (!result.ok) throw new Error(`put ${key}: ${result.message}`);
  return performance.now() - started;
}

async function fill(client: EtcdClient, prefix: string, megabytes: number): Promise<void> {
  const count = Math.ceil((megabytes * 1024 * 1024) / valueBytes);
  const value = Buffer.alloc(valueBytes, 7);
  let next = 0;
  await Promise.all(Array.from({ length: 64 }, async () => {
    // Keys alternate between two halves, so that deleting one leaves free pages spread over the file.
    while (next < count) {
      const index = next++;
      await timedPut(client, `${prefix}${index % 2 === 0 ? "kept" : "freed"}/${index}`, value);
    }
  }));
}

async function dbSize(client: EtcdClient): Promise<number> {
  const status = await client.maintenance.call("status", rpc.StatusRequestSchema, {}, rpc.StatusResponseSchema);
  if (!status.ok) throw new Error(status.message);
  return Number(status.response.dbSize);
}

async function defragment(name: "tetcd" | "etcd", megabytes: number): Promise<Record<string, string | number>> {
  const server = await startBenchServer(name, ["--quota-backend-bytes", String(8 * 1024 ** 3)]);
  const client = new EtcdClient(server.endpoint);
  try {
    await fill(client, "fill/", megabytes);
    const deleted = await client.kv.call("deleteRange", rpc.DeleteRangeRequestSchema, { key: Buffer.from("fill/freed/"), rangeEnd: Buffer.from("fill/freed0") }, rpc.DeleteRangeResponseSchema);
    if (!deleted.ok) throw new Error(deleted.message);
    await client.kv.call("compact", rpc.CompactionRequestSchema, { revision: deleted.response.header!.revision, physical: true });
    const before = await dbSize(client);
    // One client putting in a loop while the defragmentation runs: its longest put is the pause.
    // Settle first: the compaction's deletes reach the disk.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    let running = true;
    const puts: Array<{ startMs: number; latencyMs: number }> = [];
    const writer = (async () => {
      for (let index = 0; running; index++) {
        const startMs = performance.now();
        puts.push({ startMs, latencyMs: await timedPut(client, `during/${index % 100}`, Buffer.alloc(256, 1)) });
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 200));
    const started = performance.now();
    const result = await client.maintenance.call("defragment", rpc.DefragmentRequestSchema, {}, rpc.DefragmentResponseSchema);
    const ended = performance.now();
    const tookMs = ended - started;
    await new Promise((resolve) => setTimeout(resolve, 100));
    running = false;
    await writer;
    if (!result.ok) throw new Error(result.message);
    // The puts in flight at some moment of the defragmentation.
    const latencies = puts.filter((put) => put.startMs + put.latencyMs >= started && put.startMs <= ended).map((put) => put.latencyMs);
    const sorted = [...latencies].sort((a, b) => a - b);
    return { server: name, "DB size before": before, "DB size after": await dbSize(client), "defrag ms": Math.round(tookMs), puts: latencies.length, "put p99 ms": quantile(sorted, 0.99).toFixed(2), "longest put ms": sorted.at(-1)!.toFixed(1) };
  } finally {
    client.close();
    await server.stop();
  }
}

async function snapshotUnderLoad(name: "tetcd" | "etcd", megabytes: number, loadSeconds: number): Promise<Record<string, string | number>> {
  const server = await startBenchServer(name);
  const client = new EtcdClient(server.endpoint);
  const directory = mkdtempSync(join(tmpdir(), "bench-snapshot-"));
  try {
    await fill(client, "fill/", megabytes);
    const value = Buffer.alloc(256, 3);
    let running = true;
    const baseline: number[] = [];
    const during: number[] = [];
    let saving = false;
    const load = Promise.all(Array.from({ length: 64 }, async (_, client64) => {
      for (let index = 0; running; index++) {
        const latency = await timedPut(client, `load/${client64}/${index % 50}`, value);
        (saving ? during : baseline).push(latency);
      }
    }));
    await new Promise((resolve) => setTimeout(resolve, (loadSeconds * 1000) / 4));
    saving = true;
    const path = join(directory, "snapshot.db");
    const started = performance.now();
    // etcdctl runs as a child process of its own; the load goes on in this one meanwhile.
    const saved = await new Promise<number>((resolve) => {
      execFile("etcdctl", [`--endpoints=${server.endpoint}`, "snapshot", "save", path], { env: { ...process.env, ETCDCTL_API: "3" } }, (error) => resolve(error === null ? 0 : 1));
    });
    const saveMs = performance.now() - started;
    saving = false;
    await new Promise((resolve) => setTimeout(resolve, (loadSeconds * 1000) / 4));
    running = false;
    await load;
    if (saved !== 0) throw new Error("etcdctl snapshot save failed");
    // One point in time: every revision from 2 up to the newest is there, once.
    const reader = new BboltReader(path);
    let expected = 2;
    let torn = 0;
    for (const { key } of reader.records("key")) {
      const main = Number(key.readBigUInt64BE(0));
      if (main !== expected) torn++;
      expected = main + 1;
    }
    reader.close();
    const p99 = (values: number[]) => quantile([...values].sort((a, b) => a - b), 0.99).toFixed(2);
    return { server: name, "snapshot MB": (reader.sizeBytes / 1024 / 1024).toFixed(1), "save ms": Math.round(saveMs), "revision": expected - 1, "gaps in revisions": torn, "puts during save": during.length, "p99 ms without save": p99(baseline), "p99 ms during save": p99(during) };
  } finally {
    client.close();
    await server.stop();
    rmSync(directory, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const megabytes = option("megabytes", 64);
  const loadSeconds = option("load-seconds", 8);
  const targets: Array<"tetcd" | "etcd"> = etcdInstalled() ? ["tetcd", "etcd"] : ["tetcd"];
  const defragRows = [];
  for (const name of targets) defragRows.push(await defragment(name, megabytes));
  console.table(defragRows);
  const snapshotRows = [];
  for (const name of targets) snapshotRows.push(await snapshotUnderLoad(name, megabytes, loadSeconds));
  console.table(snapshotRows);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
