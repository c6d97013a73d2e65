// Auto-compaction beside etcd 3.4 over one timeline: clusters of three
// (tetcd's and etcd's) started with --auto-compaction-mode periodic and a
// one-second retention get one put every 2.5 s, each a revision of its own.
// Both compact at the same revisions, in the same order (each put's revision
// once it is older than the window), only their leaders compact, and every
// member ends with the last put's revision as its compaction point.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import * as rpc from "../../src/gen/etcdserverpb/rpc_pb.js";
import { EtcdClient } from "../support/client.js";
import { startCluster, type Cluster } from "../support/cluster.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The revisions each member's log says it finished compacting at, in order. */
function completedCompactions(output: string): number[] {
  const revisions: number[] = [];
  for (const line of output.split("\n")) {
    if (!line.includes('"msg":"completed auto periodic compaction"')) continue;
    const revision = /"revision":(\d+)/.exec(line)?.[1];
    if (revision !== undefined) revisions.push(Number(revision));
  }
  return revisions;
}

/** Consecutive repeats removed: a compaction at a revision already compacted is retried every window. */
function distinct(values: number[]): number[] {
  return values.filter((value, index) => index === 0 || values[index - 1] !== value);
}

describe("auto-compaction in clusters beside etcd 3.4", { timeout: 120_000 }, () => {
  const clusters = new Map<"etcd" | "tetcd", Cluster>();
  const finalRevisions = new Map<string, number>();
  before(async () => {
    const args = ["--auto-compaction-mode", "periodic", "--auto-compaction-retention", "1s", "--logger", "zap"];
    // One after the other: free ports are picked as each starts.
    clusters.set("etcd", await startCluster("etcd", 3, { extraArgs: args }));
    clusters.set("tetcd", await startCluster("tetcd", 3, { extraArgs: args }));
    const clients = [...clusters.entries()].map(([kind, cluster]) => [kind, new EtcdClient(cluster.members[0]!.endpoint)] as const);
    try {
      await sleep(1500);
      for (let round = 0; round < 3; round++) {
        for (const [kind, client] of clients) {
          const put = await client.kv.call("put", rpc.PutRequestSchema, { key: Buffer.from("k"), value: Buffer.from(`v${round}`) }, rpc.PutResponseSchema);
          assert.ok(put.ok, `${kind}: ${put.ok ? "" : put.message}`);
          finalRevisions.set(kind, Number(put.response.header!.revision));
        }
        await sleep(2500);
      }
    } finally {
      for (const [, client] of clients) client.close();
    }
  });
  after(async () => {
    for (const cluster of clusters.values()) await cluster.stop();
  });
  const cluster = (kind: "etcd" | "tetcd"): Cluster => {
    const found = clusters.get(kind);
    assert.ok(found !== undefined, `${kind} did not start`);
    return found;
  };

  test("the same compaction revisions, in the same order, from the leader only", () => {
    const perKind = new Map<string, number[]>();
    for (const kind of ["etcd", "tetcd"] as const) {
      const compacting = cluster(kind).members.map((member) => completedCompactions(member.output())).filter((revisions) => revisions.length > 0);
      assert.equal(compacting.length, 1, `${kind}: members that compacted: ${compacting.length}`);
      perKind.set(kind, distinct(compacting[0]!));
    }
    // Both clusters went through the same revisions (a first put at 2 on both, as their members' publish takes no revision).
    assert.equal(finalRevisions.get("tetcd"), finalRevisions.get("etcd"));
    assert.deepEqual(perKind.get("tetcd"), perKind.get("etcd"));
    assert.deepEqual(perKind.get("tetcd")!.slice(-3), [2, 3, 4]);
  });

  test("every member's compaction point is the last put's revision", async () => {
    for (const kind of ["etcd", "tetcd"] as const) {
      for (const member of cluster(kind).members) {
        const client = new EtcdClient(member.endpoint);
        try {
          const hash = await client.maintenance.call("hashKV", rpc.HashKVRequestSchema, {}, rpc.HashKVResponseSchema);
          assert.ok(hash.ok);
          assert.equal(Number(hash.response.compactRevision), finalRevisions.get(kind), `${kind} ${member.name}`);
        } finally {
          client.close();
        }
      }
    }
  });
});
