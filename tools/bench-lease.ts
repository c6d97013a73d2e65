import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  LeaseGrantRequestSchema,
  LeaseKeepAliveRequestSchema,
  LeaseKeepAliveResponseSchema,
  LeaseRevokeRequestSchema,
  PutRequestSchema,
} from "../src/gen/etcdserverpb/rpc_pb.js";
import { etcdInstalled, quantile, startBenchServer, type BenchServer } from "./bench/servers.js";

/**
 * Lease benchmarks, tetcd and (when installed) real etcd in the same run:
 * grant and revoke rates, keep-alive throughput over streams, and put latency
 * while 10,000 leases expire at once.
 *
 *   node dist/tools/bench-lease.js [--clients 64] [--duration 5] [--storm 10000]
 */
const identity = (bytes: Buffer): Buffer => bytes;

function option(name: string, fallback: number): number {
  const index = process.argv.indexOf(name);
  return index >= 0 ? Number(process.argv[index + 1]) : fallback;
}

function unary(client: grpc.Client, path: string, bytes: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => client.makeUnaryRequest(path, identity, identity, Buffer.from(bytes), (error) => (error ? reject(error) : resolve())));
}

/** Runs `call(n)` from `clients` concurrent lanes for `durationMs`; returns calls per second. */
async function rate(clients: number, durationMs: number, call: (sequence: number) => Promise<void>): Promise<number> {
  let sequence = 0;
  let completed = 0;
  const deadline = performance.now() + durationMs;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < deadline) {
        await call(sequence++);
        completed++;
      }
    }),
  );
  return (completed / (performance.now() - started)) * 1000;
}

async function keepAliveThroughput(client: grpc.Client, streams: number, durationMs: number, firstId: number): Promise<number> {
  let answered = 0;
  const deadline = performance.now() + durationMs;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: streams }, (_, lane) =>
      new Promise<void>((resolve) => {
        const stream = client.makeBidiStreamRequest("/etcdserverpb.Lease/LeaseKeepAlive", identity, identity);
        const request = Buffer.from(toBinary(LeaseKeepAliveRequestSchema, create(LeaseKeepAliveRequestSchema, { ID: BigInt(firstId + lane) })));
        const window = 8;
        stream.on("data", (bytes: Buffer) => {
          fromBinary(LeaseKeepAliveResponseSchema, bytes);
          answered++;
          if (performance.now() < deadline) stream.write(request);
          else {
            stream.cancel();
            resolve();
          }
        });
        stream.on("error", () => resolve());
        for (let index = 0; index < window; index++) stream.write(request);
      }),
    ),
  );
  return (answered / (performance.now() - started)) * 1000;
}

async function stormLatencies(client: grpc.Client, leases: number, clients: number): Promise<{ baseline: number[]; storm: number[] }> {
  const ttlSeconds = 5;
  for (let first = 0; first < leases; first += 200) {
    await Promise.all(
      Array.from({ length: Math.min(200, leases - first) }, (_, index) =>
        unary(client, "/etcdserverpb.Lease/LeaseGrant", toBinary(LeaseGrantRequestSchema, create(LeaseGrantRequestSchema, { ID: BigInt(5_000_000 + first + index), TTL: BigInt(ttlSeconds) }))),
      ),
    );
  }
  const granted = performance.now();
  const put = toBinary(PutRequestSchema, create(PutRequestSchema, { key: Buffer.from("storm-writer"), value: Buffer.alloc(256, 0x61) }));
  const baseline: number[] = [];
  const storm: number[] = [];
  // Writes before the leases run out are the baseline; writes for 10 s after, the storm.
  const end = granted + ttlSeconds * 1000 + 10_000;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < end) {
        const sent = performance.now();
        await unary(client, "/etcdserverpb.KV/Put", put);
        const latency = performance.now() - sent;
        (sent < granted + ttlSeconds * 1000 - 500 ? baseline : storm).push(latency);
      }
    }),
  );
  return { baseline: baseline.sort((a, b) => a - b), storm: storm.sort((a, b) => a - b) };
}

async function measure(server: BenchServer, clients: number, durationMs: number, stormLeases: number): Promise<Record<string, string>> {
  const client = new grpc.Client(server.endpoint, grpc.credentials.createInsecure());
  const grantRequest = (id: number) => toBinary(LeaseGrantRequestSchema, create(LeaseGrantRequestSchema, { ID: BigInt(id), TTL: 600n }));
  const grants = await rate(clients, durationMs, (sequence) => unary(client, "/etcdserverpb.Lease/LeaseGrant", grantRequest(1_000_000 + sequence)));
  let next = 1_000_000;
  const revokes = await rate(clients, durationMs, async () => {
    const id = next++;
    await unary(client, "/etcdserverpb.Lease/LeaseRevoke", toBinary(LeaseRevokeRequestSchema, create(LeaseRevokeRequestSchema, { ID: BigInt(id) }))).catch(() => undefined);
  });
  await Promise.all(Array.from({ length: clients }, (_, lane) => unary(client, "/etcdserverpb.Lease/LeaseGrant", grantRequest(3_000_000 + lane))));
  const keepAlives = await keepAliveThroughput(client, clients, durationMs, 3_000_000);
  const { baseline, storm } = await stormLatencies(client, stormLeases, 16);
  client.close();
  const ms = (value: number) => value.toFixed(2);
  return {
    "grants/s": grants.toFixed(0),
    "revokes/s": revokes.toFixed(0),
    "keep-alives/s": keepAlives.toFixed(0),
    "put p50 ms before storm": ms(quantile(baseline, 0.5)),
    "put p99 ms before storm": ms(quantile(baseline, 0.99)),
    "put p50 ms in storm": ms(quantile(storm, 0.5)),
    "put p99 ms in storm": ms(quantile(storm, 0.99)),
    "put max ms in storm": ms(storm[storm.length - 1] ?? NaN),
  };
}

const clients = option("--clients", 64);
const durationMs = option("--duration", 5) * 1000;
const stormLeases = option("--storm", 10_000);
const results: Record<string, Record<string, string>> = {};
for (const name of etcdInstalled() ? (["tetcd", "etcd"] as const) : (["tetcd"] as const)) {
  const server = await startBenchServer(name);
  try {
    results[name] = await measure(server, clients, durationMs, stormLeases);
    console.log(name, results[name]);
  } finally {
    await server.stop();
  }
}
console.log(`\n| measure (${clients} clients/streams, storm of ${stormLeases} leases) | tetcd | etcd |`);
console.log("|---|---:|---:|");
for (const measureName of Object.keys(results["tetcd"]!)) console.log(`| ${measureName} | ${results["tetcd"]![measureName]} | ${results["etcd"]?.[measureName] ?? "-"} |`);
