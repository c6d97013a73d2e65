// Range options that etcdctl 3.4 has no flags for (`--count-only`,
// `--min-mod-rev`, `--max-mod-rev`, `--min-create-rev`, `--max-create-rev` came
// with etcdctl 3.5; etcdctl-kv.test.ts checks that 3.4 rejects them the same way
// on both). Here the same RangeRequests go over gRPC to a fresh etcd and a fresh
// tetcd, after the same writes made with the real etcdctl; the responses must be
// equal apart from the header's cluster_id, member_id and raft_term.
import assert from "node:assert/strict";
import { toJson, type MessageInitShape } from "@bufbuild/protobuf";
import { after, before, describe, test } from "node:test";
import { RangeRequestSchema, RangeResponseSchema } from "../../src/gen/etcdserverpb/rpc_pb.js";
import { EtcdClient, type CallResult } from "../support/client.js";
import { Pair } from "./harness.js";

type RangeInit = MessageInitShape<typeof RangeRequestSchema>;
type Outcome = { ok: true; response: unknown } | { ok: false; code: number; message: string };

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const all: RangeInit = { key: bytes("\0"), rangeEnd: bytes("\0") };
const prefixK: RangeInit = { key: bytes("k"), rangeEnd: bytes("l") };

function normalized(result: CallResult<import("../../src/gen/etcdserverpb/rpc_pb.js").RangeResponse>): Outcome {
  if (!result.ok) return result;
  const response = result.response;
  if (response.header !== undefined) {
    response.header.clusterId = 0n;
    response.header.memberId = 0n;
    response.header.raftTerm = 0n;
  }
  return { ok: true, response: toJson(RangeResponseSchema, response) };
}

const cases: Array<[string, RangeInit]> = [
  ["count_only over all keys", { ...all, countOnly: true }],
  ["count_only over a prefix", { ...prefixK, countOnly: true }],
  ["count_only with a limit", { ...all, countOnly: true, limit: 2n }],
  ["count_only and keys_only at an old revision", { ...all, countOnly: true, keysOnly: true, revision: 4n }],
  ["count_only of a missing key", { key: bytes("nosuch"), countOnly: true }],
  ["min_mod_revision", { ...all, minModRevision: 6n }],
  ["max_mod_revision", { ...all, maxModRevision: 5n }],
  ["min_mod_revision and max_mod_revision", { ...all, minModRevision: 4n, maxModRevision: 8n }],
  ["min_create_revision", { ...all, minCreateRevision: 4n }],
  ["max_create_revision", { ...all, maxCreateRevision: 4n }],
  ["min and max create revision with keys_only", { ...all, minCreateRevision: 3n, maxCreateRevision: 6n, keysOnly: true }],
  ["mod revision filters with a limit", { ...all, minModRevision: 3n, limit: 2n }],
  ["mod revision filters with count_only", { ...all, minModRevision: 6n, countOnly: true }],
  ["create revision filters with sort", { ...all, minCreateRevision: 3n, sortTarget: 4, sortOrder: 2 }],
  ["filters at an old revision", { ...prefixK, revision: 6n, maxModRevision: 4n }],
  ["filters that exclude everything", { ...all, minModRevision: 9n, maxModRevision: 3n }],
  ["negative revision", { ...all, revision: -1n }],
];

describe("Range count_only and revision filters over gRPC: tetcd answers what etcd answers", { timeout: 60_000 }, () => {
  let pair: Pair | undefined;
  let clients: { etcd: EtcdClient; tetcd: EtcdClient } | undefined;
  before(async () => {
    pair = await Pair.start();
    clients = { etcd: new EtcdClient(pair.etcd.endpoint), tetcd: new EtcdClient(pair.tetcd.endpoint) };
    // revisions 2..9 on both, through the real etcdctl.
    for (const [key, value] of [["k1", "a"], ["k2", "b"], ["k3", "c"], ["k1", "d"], ["x", "e"], ["k2", "f"], ["k4", "g"], ["k1", "h"]]) {
      pair.expectSame({ args: ["put", key!, value!] });
    }
  });
  after(async () => {
    clients?.etcd.close();
    clients?.tetcd.close();
    await pair?.stop();
  });
  for (const [name, request] of cases) {
    test(name, async () => {
      if (clients === undefined) throw new Error("servers did not start");
      const [etcd, tetcd] = await Promise.all([
        clients.etcd.kv.call("range", RangeRequestSchema, request, RangeResponseSchema),
        clients.tetcd.kv.call("range", RangeRequestSchema, request, RangeResponseSchema),
      ]);
      assert.deepEqual(normalized(tetcd), normalized(etcd));
    });
  }
});
