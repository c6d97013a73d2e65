import { fork } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { etcdInstalled, quantile, startBenchCluster, startBenchServer } from "./bench/servers.js";
import { benchUser, makeBenchTls, type BenchSecurity } from "./bench/security.js";
import type { WorkerResult, WorkerTask } from "./bench/worker.js";

/**
 * Benchmarks tetcd and, when installed, real etcd in the same run, with the
 * same load generator: several worker processes, each with its own gRPC
 * connections. Prints QPS and p50/p99 latency for both and the ratio.
 *
 *   npm run bench -- [--workloads put,range-serializable,range-linearizable]
 *                    [--clients 1,16,64,256] [--duration 5] [--workers 2]
 *                    [--targets tetcd,etcd] [--keys 10000] [--value-bytes 256]
 *                    [--members 3] [--tls] [--auth]
 *
 * --tls serves the client port over TLS (a throwaway CA made with openssl);
 * --auth enables auth with simple tokens, and every request carries a token.
 * With --members N, each target runs as an N-member cluster on loopback and
 * the clients are spread over all members, as etcd's own benchmark tool does.
 */
const here = dirname(fileURLToPath(import.meta.url));

interface Options {
  workloads: WorkerTask["workload"][];
  clients: number[];
  durationMs: number;
  workers: number;
  targets: string[];
  keySpace: number;
  valueBytes: number;
  tetcdArgs: string[];
  members: number;
  tls: boolean;
  auth: boolean;
}

function parseOptions(argv: string[]): Options {
  const options: Options = {
    workloads: ["put", "range-serializable", "range-linearizable"],
    clients: [1, 16, 64, 256],
    durationMs: 5000,
    workers: 2,
    targets: ["tetcd", "etcd"],
    keySpace: 10_000,
    valueBytes: 256,
    tetcdArgs: [],
    members: 1,
    tls: false,
    auth: false,
  };
  for (let index = 0; index < argv.length; index++) {
    const name = argv[index]!;
    if (name === "--tls" || name === "--auth") {
      options[name === "--tls" ? "tls" : "auth"] = true;
      continue;
    }
    const value = argv[++index] ?? "";
    if (name === "--workloads") options.workloads = value.split(",") as Options["workloads"];
    else if (name === "--clients") options.clients = value.split(",").map(Number);
    else if (name === "--duration") options.durationMs = Number(value) * 1000;
    else if (name === "--workers") options.workers = Number(value);
    else if (name === "--targets") options.targets = value.split(",");
    else if (name === "--keys") options.keySpace = Number(value);
    else if (name === "--value-bytes") options.valueBytes = Number(value);
    else if (name === "--members") options.members = Number(value);
    else if (name === "--tetcd-args") options.tetcdArgs = value.split(" ").filter(Boolean);
    else throw new Error(`unknown option ${name}`);
  }
  return options;
}

async function runLoad(endpoints: string[], workload: WorkerTask["workload"], clients: number, options: Options & { security: BenchSecurity }, durationMs: number): Promise<{ qps: number; p50Ms: number; p99Ms: number; errors: number; firstError?: string }> {
  const workers = Math.min(options.workers, clients);
  const tasks = Array.from({ length: workers }, (_, index): WorkerTask => {
    const concurrency = Math.floor(clients / workers) + (index < clients % workers ? 1 : 0);
    // Each worker starts its round robin at another member, so that every member gets clients.
    const rotated = [...endpoints.slice(index % endpoints.length), ...endpoints.slice(0, index % endpoints.length)];
    return { endpoints: rotated, workload, concurrency, connections: Math.max(1, Math.min(concurrency, 4)), durationMs, keySpace: options.keySpace, valueBytes: options.valueBytes, seed: 7919 * (index + 1), caFile: options.security.tls?.caFile, user: options.security.auth === true ? benchUser : undefined };
  });
  const results = await Promise.all(
    tasks.map(
      (task) =>
        new Promise<WorkerResult>((resolve, reject) => {
          const child = fork(join(here, "bench", "worker.js"), { stdio: "inherit" });
          child.once("message", (result) => resolve(result as WorkerResult));
          child.once("exit", (code) => (code === 0 ? undefined : reject(new Error(`worker exited with ${code}`))));
          child.send(task);
        }),
    ),
  );
  const latencies = results.flatMap((result) => result.latenciesUs).sort((a, b) => a - b);
  const completed = results.reduce((sum, result) => sum + result.completed, 0);
  const elapsedMs = Math.max(...results.map((result) => result.elapsedMs));
  const percentile = (fraction: number): number => quantile(latencies, fraction) / 1000;
  const errors = results.reduce((sum, result) => sum + result.errors, 0);
  return { qps: (completed / elapsedMs) * 1000, p50Ms: percentile(0.5), p99Ms: percentile(0.99), errors, firstError: results.find((result) => result.firstError)?.firstError };
}

async function main(): Promise<void> {
  const parsed = parseOptions(process.argv.slice(2));
  const options = { ...parsed, security: { tls: parsed.tls ? makeBenchTls() : undefined, auth: parsed.auth } as BenchSecurity };
  if (options.targets.includes("etcd") && !etcdInstalled()) {
    console.log("real etcd is not installed: measuring tetcd alone");
    options.targets = options.targets.filter((target) => target !== "etcd");
  }
  const rows: string[] = [];
  const table: Record<string, Record<string, { qps: number; p50Ms: number; p99Ms: number }>> = {};
  for (const targetName of options.targets) {
    const extraArgs = targetName === "tetcd" ? options.tetcdArgs : [];
    const target =
      options.members > 1
        ? await startBenchCluster(targetName as "tetcd" | "etcd", options.members, extraArgs, options.security)
        : await startBenchServer(targetName as "tetcd" | "etcd", extraArgs, options.security).then((server) => ({ endpoints: [server.endpoint], stop: () => server.stop() }));
    try {
      for (const workload of options.workloads) {
        if (workload !== "put") await runLoad(target.endpoints, "put", 64, { ...options }, Math.min(2000, options.durationMs)); // fill the key space
        for (const clients of options.clients) {
          const result = await runLoad(target.endpoints, workload, clients, options, options.durationMs);
          if (result.errors > 0) console.log(`${targetName} ${workload} ${clients}: ${result.errors} errors, first: ${result.firstError}`);
          (table[`${workload} ${clients}`] ??= {})[targetName] = result;
          console.log(`${targetName.padEnd(6)} ${workload.padEnd(19)} clients ${String(clients).padStart(3)}: ${result.qps.toFixed(0).padStart(7)} req/s  p50 ${result.p50Ms.toFixed(2)} ms  p99 ${result.p99Ms.toFixed(2)} ms`);
        }
      }
    } finally {
      await target.stop();
    }
  }
  rows.push("| workload | clients | tetcd QPS | tetcd p50 ms | tetcd p99 ms | etcd QPS | etcd p50 ms | etcd p99 ms | QPS ratio |");
  rows.push("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const [key, results] of Object.entries(table)) {
    const [workload, clients] = key.split(" ");
    const ours = results["tetcd"];
    const theirs = results["etcd"];
    const cell = (value: number | undefined, digits: number): string => (value === undefined ? "-" : value.toFixed(digits));
    const ratio = ours !== undefined && theirs !== undefined ? (ours.qps / theirs.qps).toFixed(2) : "-";
    rows.push(`| ${workload} | ${clients} | ${cell(ours?.qps, 0)} | ${cell(ours?.p50Ms, 2)} | ${cell(ours?.p99Ms, 2)} | ${cell(theirs?.qps, 0)} | ${cell(theirs?.p50Ms, 2)} | ${cell(theirs?.p99Ms, 2)} | ${ratio} |`);
  }
  console.log("\n" + rows.join("\n"));
  options.security.tls?.remove();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
