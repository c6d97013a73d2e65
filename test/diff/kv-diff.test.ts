import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { DescMessage } from "@bufbuild/protobuf";
import * as rpc from "../../src/gen/etcdserverpb/rpc_pb.js";
import { comparable } from "../support/compare.js";
import { EtcdClient, type CallResult, type ServiceClient } from "../support/client.js";
import { startEtcd, startTetcd, type ServerProcess } from "../support/processes.js";
import { Random } from "../support/random.js";
import { nextOperation, type Operation, type WorkloadState } from "./workload.js";

/**
 * Differential test against the reference etcd 3.4: the same seeded random
 * requests go to a fresh tetcd and a fresh etcd, and every response (or error
 * code and message) must be the same, ids and raft term aside.
 * Replay one seed with TETCD_DIFF_SEEDS=<seed>; TETCD_DIFF_OPERATIONS sets the length.
 */
const seeds = (process.env["TETCD_DIFF_SEEDS"] ?? "1,2,3,4").split(",").map(Number);
const operationsPerSeed = Number(process.env["TETCD_DIFF_OPERATIONS"] ?? "800");
/** With TETCD_DIFF_HASH_EVERY=1, HashKV is compared after every operation: finds where histories diverge. */
const hashEveryOperation = process.env["TETCD_DIFF_HASH_EVERY"] === "1";

const schemas: Record<Operation["method"], [DescMessage, DescMessage, "kv" | "maintenance" | "lease"]> = {
  range: [rpc.RangeRequestSchema, rpc.RangeResponseSchema, "kv"],
  put: [rpc.PutRequestSchema, rpc.PutResponseSchema, "kv"],
  deleteRange: [rpc.DeleteRangeRequestSchema, rpc.DeleteRangeResponseSchema, "kv"],
  txn: [rpc.TxnRequestSchema, rpc.TxnResponseSchema, "kv"],
  compact: [rpc.CompactionRequestSchema, rpc.CompactionResponseSchema, "kv"],
  hashKV: [rpc.HashKVRequestSchema, rpc.HashKVResponseSchema, "maintenance"],
  leaseGrant: [rpc.LeaseGrantRequestSchema, rpc.LeaseGrantResponseSchema, "lease"],
  leaseRevoke: [rpc.LeaseRevokeRequestSchema, rpc.LeaseRevokeResponseSchema, "lease"],
};


async function send(client: EtcdClient, operation: Operation): Promise<CallResult<unknown>> {
  const [requestSchema, responseSchema, service] = schemas[operation.method];
  const target: ServiceClient = client[service];
  return target.call(operation.method, requestSchema, operation.request as never, responseSchema);
}

/**
 * Both servers remove compacted records in the background, and while no key is
 * live, HashKV counts the records not removed yet (etcd's definition): wait
 * until a server's hash stops changing. Samples are further apart than a
 * backend commit (100 ms in both), since etcd's reads see compaction's deletes
 * only once its batch is committed.
 */
const settleSampleMs = 150;

async function settleCompaction(client: EtcdClient): Promise<void> {
  const hash = { method: "hashKV", request: { revision: 0n } } as const;
  let previous = JSON.stringify(comparable(await send(client, hash), rpc.HashKVResponseSchema));
  for (let attempt = 0; attempt < 20; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, settleSampleMs));
    const current = JSON.stringify(comparable(await send(client, hash), rpc.HashKVResponseSchema));
    if (current === previous) return;
    previous = current;
  }
}

function describeOperation(operation: Operation): string {
  const replacer = (_: string, value: unknown): unknown => (typeof value === "bigint" ? `${value}n` : value instanceof Uint8Array ? Buffer.from(value).toString() : value);
  return `${operation.method} ${JSON.stringify(operation.request, replacer)}`;
}

async function runSeed(seed: number): Promise<number> {
  let tetcd: ServerProcess | undefined;
  let etcd: ServerProcess | undefined;
  const clients: EtcdClient[] = [];
  try {
    [tetcd, etcd] = await Promise.all([startTetcd(), startEtcd()]);
    const ours = new EtcdClient(tetcd.endpoint);
    const reference = new EtcdClient(etcd.endpoint);
    clients.push(ours, reference);
    const random = new Random(seed);
    const state: WorkloadState = { revision: 1, compactRevision: 0 };
    let compactedSinceSettled = false;
    for (let index = 0; index < operationsPerSeed; index++) {
      const operation = nextOperation(random, state);
      const responseSchema = schemas[operation.method][1];
      if (operation.method === "hashKV" && compactedSinceSettled) {
        await Promise.all([settleCompaction(reference), settleCompaction(ours)]);
        compactedSinceSettled = false;
      }
      const expected = await send(reference, operation);
      const actual = await send(ours, operation);
      assert.deepEqual(
        comparable(actual, responseSchema),
        comparable(expected, responseSchema),
        `seed ${seed}, operation ${index}: ${describeOperation(operation)}`,
      );
      if (hashEveryOperation) {
        const hash = { method: "hashKV", request: { revision: 0n } } as const;
        await Promise.all([settleCompaction(reference), settleCompaction(ours)]);
        assert.deepEqual(comparable(await send(ours, hash), rpc.HashKVResponseSchema), comparable(await send(reference, hash), rpc.HashKVResponseSchema), `seed ${seed}: hash after operation ${index}: ${describeOperation(operation)}`);
      }
      if (expected.ok) {
        const header = (expected.response as { header?: { revision: bigint } }).header;
        if (header !== undefined && operation.method !== "hashKV") state.revision = Math.max(state.revision, Number(header.revision));
        if (operation.method === "compact") {
          state.compactRevision = Number(operation.request["revision"]);
          compactedSinceSettled = true;
        }
      }
    }
    return operationsPerSeed;
  } finally {
    for (const client of clients) client.close();
    await Promise.all([tetcd?.stop(), etcd?.stop()]);
  }
}

describe("KV API against etcd 3.4", { timeout: 600_000 }, () => {
  let total = 0;
  before(() => {
    total = 0;
  });
  for (const seed of seeds) {
    test(`seed ${seed}: ${operationsPerSeed} random requests answer as etcd does`, { timeout: 300_000 }, async () => {
      total += await runSeed(seed);
    });
  }
  after(() => {
    console.log(`differential KV test: ${total} operations over seeds ${seeds.join(",")}`);
  });
});
