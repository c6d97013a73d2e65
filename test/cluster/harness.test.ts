// The cluster harness (test/support/cluster.ts) against the reference etcd:
// members start and agree on one leader, writes replicate, a killed leader is
// replaced, and the proxies' partitions cut a member off in both directions.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { parseBigJson, startCluster, type Cluster } from "../support/cluster.js";
import { etcdctlAsync, hasCommand } from "../support/processes.js";

const skip = hasCommand("etcd") && hasCommand("etcdctl") ? false : "etcd and etcdctl are not installed";

interface StatusEntry {
  Endpoint: string;
  Status: { header: { member_id: string | number }; leader: string | number };
}

describe("cluster harness, reference etcd", { skip, timeout: 60_000 }, () => {
  let cluster: Cluster;

  before(async () => {
    cluster = await startCluster("etcd", 3);
  });

  after(async () => {
    await cluster?.stop();
  });

  test("exactly one leader in endpoint status --cluster", { timeout: 15_000 }, async () => {
    const result = await etcdctlAsync(cluster.endpoints()[0]!, ["endpoint", "status", "--cluster", "-w", "json"]);
    assert.equal(result.status, 0, result.stderr);
    const entries = parseBigJson(result.stdout) as StatusEntry[];
    assert.equal(entries.length, 3);
    const leaders = entries.filter((entry) => String(entry.Status.header.member_id) === String(entry.Status.leader));
    assert.equal(leaders.length, 1, result.stdout);
    assert.equal(new Set(entries.map((entry) => String(entry.Status.leader))).size, 1, result.stdout);
  });

  test("a put on one member is read on another", { timeout: 15_000 }, async () => {
    const [first, , third] = cluster.members;
    assert.equal((await etcdctlAsync(first!.endpoint, ["put", "harness-key", "v1"])).stdout, "OK\n");
    const read = await etcdctlAsync(third!.endpoint, ["get", "harness-key", "--print-value-only"]);
    assert.equal(read.stdout, "v1\n", read.stderr);
  });

  test("killing the leader: the others elect a new one and accept writes", { timeout: 20_000 }, async () => {
    const leader = await cluster.waitForLeader();
    await leader.kill();
    const survivors = cluster.members.filter((member) => member !== leader);
    const started = Date.now();
    const next = await cluster.waitForLeader({ among: survivors, timeoutMs: 5_000 });
    assert.notEqual(next, leader);
    assert.ok(Date.now() - started < 5_000);
    const put = await etcdctlAsync(cluster.endpoints(survivors), ["put", "after-kill", "v2"]);
    assert.equal(put.status, 0, put.stderr);
    await leader.start();
    const read = await etcdctlAsync(leader.endpoint, ["get", "after-kill", "--print-value-only"]);
    assert.equal(read.stdout, "v2\n", read.stderr);
  });

  test("a learner joins through prepareJoin, catches up and is promoted", { timeout: 30_000 }, async () => {
    const learner = await cluster.prepareJoin("m3", { learner: true });
    assert.equal(cluster.members.length, 4);
    await learner.start();
    const deadline = Date.now() + 10_000;
    let read = { status: -1, stdout: "", stderr: "" };
    while (Date.now() < deadline && read.stdout !== "v2\n") {
      read = await etcdctlAsync(learner.endpoint, ["get", "after-kill", "--print-value-only", "--consistency=s"]);
      if (read.stdout !== "v2\n") await sleep(100);
    }
    assert.equal(read.stdout, "v2\n", read.stderr);
    let promote = { status: -1, stdout: "", stderr: "" };
    while (Date.now() < deadline && promote.status !== 0) {
      promote = await etcdctlAsync(cluster.endpoints(), ["member", "promote", learner.id!]);
      if (promote.status !== 0) await sleep(200);
    }
    assert.match(promote.stdout, new RegExp(`^Member +${learner.id} promoted in cluster +[0-9a-f]+\n$`), promote.stderr);
    let isLearner: boolean | undefined = true;
    while (Date.now() < deadline && isLearner !== false) isLearner = (await cluster.status(learner))?.isLearner;
    assert.equal(isLearner, false);
  });
});

describe("cluster harness, proxied reference etcd", { skip, timeout: 60_000 }, () => {
  let cluster: Cluster;

  before(async () => {
    cluster = await startCluster("etcd", 3, { proxied: true });
  });

  after(async () => {
    await cluster?.stop();
  });

  test("the peer URLs the cluster knows are the proxies'", { timeout: 10_000 }, async () => {
    const result = await etcdctlAsync(cluster.endpoints(), ["member", "list"]);
    assert.equal(result.status, 0, result.stderr);
    for (const member of cluster.members) {
      assert.notEqual(member.advertisedPeerUrl, member.peerUrl);
      assert.match(result.stdout, new RegExp(`, ${member.name}, ${member.advertisedPeerUrl}, `));
    }
    assert.ok(cluster.members.every((member) => member.proxy!.connectionCount > 0), "peer traffic crosses the proxies");
  });

  test("an isolated leader loses its lease; the majority elects and writes; after heal it rejoins", { timeout: 40_000 }, async () => {
    const leader = await cluster.waitForLeader();
    const majority = cluster.members.filter((member) => member !== leader);
    cluster.isolate(leader.index);

    const next = await cluster.waitForLeader({ among: majority, timeoutMs: 10_000 });
    assert.notEqual(next, leader);
    const put = await etcdctlAsync(cluster.endpoints(majority), ["put", "partitioned", "majority"]);
    assert.equal(put.status, 0, put.stderr);

    const linearizable = await etcdctlAsync(leader.endpoint, ["get", "partitioned", "--consistency=l", "--command-timeout=2s"], 10_000);
    assert.notEqual(linearizable.status, 0, `isolated member served a linearizable read: ${linearizable.stdout}`);
    const serializable = await etcdctlAsync(leader.endpoint, ["get", "partitioned", "--consistency=s", "--command-timeout=2s"], 10_000);
    assert.equal(serializable.status, 0, serializable.stderr);
    assert.equal(serializable.stdout, "", "the isolated member has not seen the majority's write");

    cluster.heal();
    const deadline = Date.now() + 15_000;
    let read = { status: -1, stdout: "", stderr: "" };
    while (Date.now() < deadline) {
      read = await etcdctlAsync(leader.endpoint, ["get", "partitioned", "--print-value-only", "--command-timeout=2s"], 10_000);
      if (read.status === 0 && read.stdout === "majority\n") break;
      await sleep(200);
    }
    assert.equal(read.stdout, "majority\n", `the healed member did not catch up: ${read.stderr}`);
    // Without --pre-vote (3.4's default), the rejoining member's higher term forces a new election:
    // the leader may change, but all three agree on one.
    await cluster.waitForLeader({ timeoutMs: 10_000 });
  });
});
