// --force-new-cluster after losing a majority: of three members, two are
// killed; the survivor, restarted from its data dir with the flag, becomes a
// cluster of one that serves every acknowledged put and takes new writes.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import * as rpc from "../../src/gen/etcdserverpb/rpc_pb.js";
import { EtcdClient } from "../support/client.js";
import { startCluster, type Cluster } from "../support/cluster.js";
import { etcdctl, tetcdBin, track, type ServerProcess } from "../support/processes.js";

describe("--force-new-cluster", { timeout: 120_000 }, () => {
  let cluster: Cluster | undefined;
  let survivor: ServerProcess | undefined;
  after(async () => {
    await survivor?.stop();
    await cluster?.stop();
  });

  test("the survivor of a lost majority serves all acknowledged data as a cluster of one", async () => {
    cluster = await startCluster("tetcd", 3);
    const leader = await cluster.waitForLeader();
    let client = new EtcdClient(leader.endpoint);
    const acknowledged: string[] = [];
    try {
      for (let index = 0; index < 60; index++) {
        const put = await client.kv.call("put", rpc.PutRequestSchema, { key: Buffer.from(`key/${index}`), value: Buffer.from(`value ${index}`) });
        assert.ok(put.ok);
        acknowledged.push(`key/${index}`);
      }
    } finally {
      client.close();
    }
    const [kept, ...lost] = [leader, ...cluster.members.filter((member) => member !== leader)];
    for (const member of lost) await member!.kill();
    await kept!.stop();
    const port = Number(new URL(kept!.clientUrl).port);
    survivor = await track(process.execPath, [
      tetcdBin, "--name", kept!.name, "--data-dir", kept!.dataDir,
      "--listen-client-urls", kept!.clientUrl, "--advertise-client-urls", kept!.clientUrl,
      "--listen-peer-urls", kept!.peerUrl, "--initial-advertise-peer-urls", kept!.advertisedPeerUrl,
      "--force-new-cluster",
    ], port, kept!.dataDir, false);
    client = new EtcdClient(survivor.endpoint);
    try {
      let written = false;
      for (let attempt = 0; attempt < 100 && !written; attempt++) {
        const put = await client.kv.call("put", rpc.PutRequestSchema, { key: Buffer.from("after"), value: Buffer.from("forced") }, undefined, 2000);
        written = put.ok;
        if (!written) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.ok(written, `no write accepted after --force-new-cluster:\n${survivor.output()}`);
      const all = await client.kv.call("range", rpc.RangeRequestSchema, { key: Buffer.from("key/"), rangeEnd: Buffer.from("key0") }, rpc.RangeResponseSchema);
      assert.ok(all.ok);
      assert.deepEqual(all.response.kvs.map((kv) => Buffer.from(kv.key).toString()).sort(), [...acknowledged].sort());
      const members = etcdctl(survivor.endpoint, ["member", "list"]);
      assert.equal(members.status, 0, members.stderr);
      assert.equal(members.stdout.trim().split("\n").length, 1, members.stdout);
      assert.match(members.stdout, new RegExp(`, started, ${kept!.name}, `));
    } finally {
      client.close();
    }
  });
});
