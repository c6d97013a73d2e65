import { create, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { TxnRequestSchema } from "../src/gen/etcdserverpb/rpc_pb.js";
import { etcdInstalled, residentMemory, startBenchServer } from "./bench/servers.js";

/**
 * Loads N keys (64-byte keys, 256-byte values, one version each) into tetcd and,
 * when installed, real etcd, then reports each server's resident memory.
 *
 *   node dist/tools/memory.js [--keys 1000000] [--targets tetcd,etcd]
 */
const keyBytes = 64;
const valueBytes = 256;
const putsPerTxn = 128;
const txnsInFlight = 16;

function option(name: string, fallback: string): string {
  const index = process.argv.indexOf(name);
  return index >= 0 ? process.argv[index + 1]! : fallback;
}


function key(index: number): Buffer {
  return Buffer.from(index.toString(16).padStart(keyBytes, "0"));
}

async function load(endpoint: string, keys: number): Promise<void> {
  const client = new grpc.Client(endpoint, grpc.credentials.createInsecure(), { "grpc.max_send_message_length": -1 });
  const value = Buffer.alloc(valueBytes, 0x62);
  const identity = (bytes: Buffer): Buffer => bytes;
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < keys) {
      const first = next;
      next = Math.min(keys, next + putsPerTxn);
      const success = [];
      for (let index = first; index < next; index++) success.push({ request: { case: "requestPut" as const, value: { key: key(index), value } } });
      const bytes = Buffer.from(toBinary(TxnRequestSchema, create(TxnRequestSchema, { success })));
      await new Promise<void>((resolve, reject) => client.makeUnaryRequest("/etcdserverpb.KV/Txn", identity, identity, bytes, (error) => (error ? reject(error) : resolve())));
    }
  };
  await Promise.all(Array.from({ length: txnsInFlight }, lane));
  client.close();
}

async function measure(target: "tetcd" | "etcd", keys: number): Promise<void> {
  const server = await startBenchServer(target);
  try {
    const started = performance.now();
    await load(server.endpoint, keys);
    const seconds = (performance.now() - started) / 1000;
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const rss = residentMemory(server.pid);
    const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
    console.log(`${target}: ${keys} keys loaded in ${seconds.toFixed(1)} s; RSS ${mib(rss.total)} (${(rss.total / keys).toFixed(0)} bytes/key; anonymous ${mib(rss.anonymous)}, file-backed ${mib(rss.file)})`);
  } finally {
    await server.stop();
  }
}

const keys = Number(option("--keys", "1000000"));
const targets = option("--targets", "tetcd,etcd")
  .split(",")
  .filter((target): target is "tetcd" | "etcd" => target === "tetcd" || (target === "etcd" && etcdInstalled()));
for (const target of targets) await measure(target, keys);
