import { create } from "@bufbuild/protobuf";
import { fork } from "node:child_process";
import * as grpc from "@grpc/grpc-js";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { serviceDefinition } from "../../src/api/grpc.js";
import { KV, PutRequestSchema } from "../../src/gen/etcdserverpb/rpc_pb.js";
import type { PutLoadResult, PutLoadTask } from "./put-load.js";
import { etcdInstalled, residentMemory, startBenchServer as startServer, type BenchServer } from "../bench/servers.js";
import { WatcherFleet } from "./watchers.js";

/**
 * Watch benchmarks, tetcd and real etcd in the same run:
 * - put→event latency (p50, p99) with 1, 100 and 10,000 watchers of one key;
 * - events delivered per second to 100 watchers of one prefix under 64 put clients;
 * - memory per watcher and per stream (server RSS) with many watchers.
 *
 *   npm run build && node dist/tools/watch/bench-watch.js [--targets tetcd,etcd]
 *     [--latency-watchers 1,100,10000] [--latency-puts 200] [--throughput-watchers 100]
 *     [--throughput-clients 64] [--duration 5] [--memory-watchers 100000] [--memory-streams 1000]
 */
const here = dirname(fileURLToPath(import.meta.url));
const watchersPerStream = 100;
const drainTimeoutMs = 120_000;
const settleMs = 1000;

interface Options {
  targets: Array<"tetcd" | "etcd">;
  latencyWatchers: number[];
  latencyPuts: number;
  throughputWatchers: number;
  throughputClients: number;
  durationMs: number;
  memoryWatchers: number;
  memoryStreams: number;
}

function parseOptions(argv: string[]): Options {
  const options: Options = { targets: ["tetcd", "etcd"], latencyWatchers: [1, 100, 10_000], latencyPuts: 200, throughputWatchers: 100, throughputClients: 64, durationMs: 5000, memoryWatchers: 100_000, memoryStreams: 1000 };
  for (let index = 0; index < argv.length; index += 2) {
    const [name, value = ""] = [argv[index]!, argv[index + 1]];
    if (name === "--targets") options.targets = value.split(",") as Options["targets"];
    else if (name === "--latency-watchers") options.latencyWatchers = value.split(",").map(Number);
    else if (name === "--latency-puts") options.latencyPuts = Number(value);
    else if (name === "--throughput-watchers") options.throughputWatchers = Number(value);
    else if (name === "--throughput-clients") options.throughputClients = Number(value);
    else if (name === "--duration") options.durationMs = Number(value) * 1000;
    else if (name === "--memory-watchers") options.memoryWatchers = Number(value);
    else if (name === "--memory-streams") options.memoryStreams = Number(value);
    else throw new Error(`unknown option ${name}`);
  }
  return options;
}

type PutMethod = (request: unknown, callback: (error: grpc.ServiceError | null) => void) => void;

function kvClient(endpoint: string): grpc.Client & { put: PutMethod } {
  const Client = grpc.makeGenericClientConstructor(serviceDefinition(KV), "KV");
  return new Client(endpoint, grpc.credentials.createInsecure()) as never;
}

function put(client: grpc.Client & { put: PutMethod }, key: string, value: string): Promise<void> {
  return new Promise((resolve, reject) => client.put(create(PutRequestSchema, { key: Buffer.from(key), value: Buffer.from(value) }), (error) => (error ? reject(error) : resolve())));
}

async function waitUntil(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + drainTimeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

function quantileMs(sortedNs: Float64Array, fraction: number): number {
  return sortedNs[Math.min(sortedNs.length - 1, Math.floor(fraction * sortedNs.length))]! / 1e6;
}

/** Sequential puts to one key watched by `watchers` watchers; each put waits for every watcher's event. */
async function measureLatency(server: BenchServer, watchers: number, puts: number): Promise<{ p50Ms: number; p99Ms: number }> {
  const sentNs: bigint[] = [];
  const received: number[] = new Array(puts).fill(0);
  const samples = new Float64Array(watchers * puts);
  let sampleCount = 0;
  const fleet = new WatcherFleet(server.endpoint, (value, arrivedNs) => {
    const index = Number(value.toString());
    received[index]!++;
    samples[sampleCount++] = Number(arrivedNs - sentNs[index]!);
  });
  const client = kvClient(server.endpoint);
  try {
    await fleet.open(Math.ceil(watchers / watchersPerStream), watchers, () => ({ key: Buffer.from("latency") }));
    for (let index = 0; index < puts; index++) {
      sentNs[index] = process.hrtime.bigint();
      await put(client, "latency", String(index));
      await waitUntil(() => received[index] === watchers, `events of put ${index}`);
    }
  } finally {
    fleet.close();
    client.close();
  }
  const sorted = samples.subarray(0, sampleCount).sort();
  return { p50Ms: quantileMs(sorted, 0.5), p99Ms: quantileMs(sorted, 0.99) };
}

/** `clients` put loops on keys of one prefix (in a child process) while `watchers` watch the prefix. */
async function measureThroughput(server: BenchServer, options: Options): Promise<{ putsPerSecond: number; eventsPerSecond: number; drainMs: number }> {
  let events = 0;
  const fleet = new WatcherFleet(server.endpoint, () => events++);
  try {
    await fleet.open(Math.ceil(options.throughputWatchers / 10), options.throughputWatchers, () => ({ key: Buffer.from("tp/"), rangeEnd: Buffer.from("tp0") }));
    const task: PutLoadTask = { endpoint: server.endpoint, clients: options.throughputClients, connections: 4, durationMs: options.durationMs, prefix: "tp/", keys: 10_000, valueBytes: 256 };
    const started = Date.now();
    const result = await new Promise<PutLoadResult>((resolve, reject) => {
      const child = fork(join(here, "put-load.js"), { stdio: "inherit" });
      child.once("message", (message) => resolve(message as PutLoadResult));
      child.once("exit", (code) => (code === 0 ? undefined : reject(new Error(`put load exited with ${code}`))));
      child.send(task);
    });
    const loadEnded = Date.now();
    const expected = result.completed * options.throughputWatchers;
    await waitUntil(() => events >= expected, `${expected} events`);
    const delivered = Date.now();
    return { putsPerSecond: (result.completed / result.elapsedMs) * 1000, eventsPerSecond: (expected / (delivered - started)) * 1000, drainMs: delivered - loadEnded };
  } finally {
    fleet.close();
  }
}

/** Server RSS growth: first one watcher per stream (the streams' cost), then the rest (the watchers' cost). */
async function measureMemory(server: BenchServer, options: Options): Promise<{ bytesPerStream: number; bytesPerWatcher: number }> {
  const fleet = new WatcherFleet(server.endpoint);
  const settle = () => new Promise((resolve) => setTimeout(resolve, settleMs));
  try {
    await settle();
    const idle = residentMemory(server.pid).total;
    await fleet.open(options.memoryStreams, options.memoryStreams, (index) => ({ key: Buffer.from(`memory/${index}`) }));
    await settle();
    const withStreams = residentMemory(server.pid).total;
    const more = options.memoryWatchers - options.memoryStreams;
    await fleet.add(more, (index) => ({ key: Buffer.from(`memory/${options.memoryStreams + index}`) }));
    await settle();
    const withWatchers = residentMemory(server.pid).total;
    return { bytesPerStream: (withStreams - idle) / options.memoryStreams, bytesPerWatcher: (withWatchers - withStreams) / more };
  } finally {
    fleet.close();
  }
}

async function benchTarget(name: "tetcd" | "etcd", options: Options): Promise<Map<string, string>> {
  const results = new Map<string, string>();
  const server = await startServer(name);
  try {
    for (const watchers of options.latencyWatchers) {
      const { p50Ms, p99Ms } = await measureLatency(server, watchers, options.latencyPuts);
      results.set(`put→event latency, ${watchers} watchers (p50 / p99 ms)`, `${p50Ms.toFixed(2)} / ${p99Ms.toFixed(2)}`);
      console.log(`${name} latency ${watchers} watchers: p50 ${p50Ms.toFixed(2)} ms, p99 ${p99Ms.toFixed(2)} ms`);
    }
    const throughput = await measureThroughput(server, options);
    const label = `events/s to ${options.throughputWatchers} watchers of a prefix, ${options.throughputClients} put clients (puts/s; drain after load)`;
    results.set(label, `${throughput.eventsPerSecond.toFixed(0)} (${throughput.putsPerSecond.toFixed(0)} puts/s; ${throughput.drainMs} ms)`);
    console.log(`${name} throughput: ${results.get(label)}`);
  } finally {
    await server.stop();
  }
  const fresh = await startServer(name);
  try {
    const memory = await measureMemory(fresh, options);
    const label = `memory, ${options.memoryWatchers} watchers over ${options.memoryStreams} streams (bytes per watcher / per stream)`;
    results.set(label, `${memory.bytesPerWatcher.toFixed(0)} / ${memory.bytesPerStream.toFixed(0)}`);
    console.log(`${name} memory: ${results.get(label)}`);
  } finally {
    await fresh.stop();
  }
  return results;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  if (options.targets.includes("etcd") && !etcdInstalled()) {
    console.log("real etcd is not installed: measuring tetcd alone");
    options.targets = options.targets.filter((target) => target !== "etcd");
  }
  const table = new Map<string, Map<string, string>>();
  for (const target of options.targets) {
    for (const [measure, value] of await benchTarget(target, options)) {
      if (!table.has(measure)) table.set(measure, new Map());
      table.get(measure)!.set(target, value);
    }
  }
  console.log(`\n| measure | ${options.targets.join(" | ")} |\n|---|${options.targets.map(() => "---:").join("|")}|`);
  for (const [measure, values] of table) console.log(`| ${measure} | ${options.targets.map((target) => values.get(target) ?? "-").join(" | ")} |`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
