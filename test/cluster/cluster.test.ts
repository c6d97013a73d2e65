// tetcd clusters of real processes on loopback: leader failure, restarts,
// partitions, membership changes under load and catch-up through snapshots.
// Every test that writes under load checks that no acknowledged put was lost.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { parseBigJson, startCluster, type Cluster, type ClusterMember } from "../support/cluster.js";
import { etcdctlAsync, hasCommand } from "../support/processes.js";
import { missingFrom, WriteLoad } from "../support/write-load.js";

const skip = hasCommand("etcdctl") ? false : "etcdctl is not installed";
/** The harness's election timeout is 500 ms: a new leader is due within a few of them. */
const failoverBoundMs = 5_000;

/** Waits until every member in `members` holds every acknowledged put. */
async function assertNothingLost(members: readonly ClusterMember[], acknowledged: ReadonlyMap<string, string>, timeoutMs = 15_000): Promise<void> {
  for (const member of members) {
    const deadline = Date.now() + timeoutMs;
    let missing = await missingFrom(member.endpoint, acknowledged);
    while (missing.length > 0 && Date.now() < deadline) {
      await sleep(200);
      missing = await missingFrom(member.endpoint, acknowledged);
    }
    assert.deepEqual(missing.slice(0, 5), [], `${member.name} lacks ${missing.length} of ${acknowledged.size} acknowledged puts`);
  }
}

/** Retries an etcdctl command until it succeeds (reconfiguration waits for members to connect). */
async function eventually(endpoints: string[], args: string[], timeoutMs = 15_000): Promise<{ status: number; stdout: string; stderr: string }> {
  const deadline = Date.now() + timeoutMs;
  let result = await etcdctlAsync(endpoints, args);
  while (result.status !== 0 && Date.now() < deadline) {
    await sleep(200);
    result = await etcdctlAsync(endpoints, args);
  }
  return result;
}

describe("a 3-member tetcd cluster", { skip, timeout: 120_000 }, () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster("tetcd", 3);
  });
  after(async () => {
    await cluster?.stop();
  });

  test("the members agree on one leader and each lists all three, started", { timeout: 20_000 }, async () => {
    const leader = await cluster.waitForLeader();
    for (const member of cluster.members) {
      const status = await cluster.status(member);
      assert.equal(status?.leader, leader.id, `${member.name} follows ${status?.leader}`);
      const list = await etcdctlAsync(member.endpoint, ["member", "list", "-w", "json"]);
      assert.equal(list.status, 0, list.stderr);
      const members = (parseBigJson(list.stdout) as { members: Array<{ name: string; peerURLs: string[]; clientURLs: string[] }> }).members;
      assert.deepEqual(members.map((entry) => entry.name).sort(), ["m0", "m1", "m2"]);
      for (const entry of members) {
        const known = cluster.members.find((candidate) => candidate.name === entry.name)!;
        assert.deepEqual(entry.peerURLs, [known.advertisedPeerUrl]);
        assert.deepEqual(entry.clientURLs, [known.clientUrl]);
      }
    }
  });

  test("a put through a follower is read linearizably on every member", { timeout: 20_000 }, async () => {
    const leader = await cluster.waitForLeader();
    const follower = cluster.members.find((member) => member !== leader)!;
    const put = await etcdctlAsync(follower.endpoint, ["put", "through-follower", "v1"]);
    assert.equal(put.stdout, "OK\n", put.stderr);
    for (const member of cluster.members) {
      const read = await etcdctlAsync(member.endpoint, ["get", "through-follower", "--print-value-only"]);
      assert.equal(read.stdout, "v1\n", `${member.name}: ${read.stderr}`);
    }
  });

  test("killing the leader under write load: a new leader within a few election timeouts, no acknowledged put lost", { timeout: 60_000 }, async () => {
    const load = new WriteLoad(cluster.endpoints(), 8);
    try {
      await load.waitForMore(200);
      const leader = await cluster.waitForLeader();
      await leader.kill();
      const killedAt = Date.now();
      const survivors = cluster.members.filter((member) => member !== leader);
      const next = await cluster.waitForLeader({ among: survivors, timeoutMs: failoverBoundMs });
      assert.notEqual(next, leader);
      assert.ok(Date.now() - killedAt < failoverBoundMs, `failover took ${Date.now() - killedAt} ms`);
      await load.waitForMore(200);
      await leader.start();
      await load.waitForMore(100);
    } finally {
      await load.stop();
    }
    await assertNothingLost(cluster.members, load.acknowledged);
  });

  test("a follower killed and restarted catches up on what it missed", { timeout: 40_000 }, async () => {
    const leader = await cluster.waitForLeader();
    const follower = cluster.members.find((member) => member !== leader)!;
    await follower.kill();
    const load = new WriteLoad(cluster.endpoints(cluster.members.filter((member) => member !== follower)), 4, "missed/");
    try {
      await load.waitForMore(300);
    } finally {
      await load.stop();
    }
    await follower.start();
    const deadline = Date.now() + 15_000;
    let missing = await missingFrom(follower.endpoint, load.acknowledged, "missed/");
    while (missing.length > 0 && Date.now() < deadline) {
      await sleep(200);
      missing = await missingFrom(follower.endpoint, load.acknowledged, "missed/");
    }
    assert.equal(missing.length, 0, `the restarted follower lacks ${missing.length} puts`);
  });
});

describe("a tetcd cluster cut in two by a partition", { skip, timeout: 120_000 }, () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster("tetcd", 3, { proxied: true });
  });
  after(async () => {
    await cluster?.stop();
  });

  test("the isolated leader commits nothing and serves no linearizable read; the majority carries on; after heal it rejoins", { timeout: 60_000 }, async () => {
    const leader = await cluster.waitForLeader();
    const majority = cluster.members.filter((member) => member !== leader);
    const before = await cluster.status(leader);
    cluster.isolate(leader.index);

    const next = await cluster.waitForLeader({ among: majority, timeoutMs: failoverBoundMs * 2 });
    assert.notEqual(next, leader);
    const put = await etcdctlAsync(cluster.endpoints(majority), ["put", "partitioned", "majority"]);
    assert.equal(put.status, 0, put.stderr);

    const minorityPut = await etcdctlAsync(leader.endpoint, ["put", "minority", "lost", "--command-timeout=2s"], 10_000);
    assert.notEqual(minorityPut.status, 0, "the isolated member acknowledged a put");
    const linearizable = await etcdctlAsync(leader.endpoint, ["get", "partitioned", "--command-timeout=2s"], 10_000);
    assert.notEqual(linearizable.status, 0, `the isolated member served a linearizable read: ${linearizable.stdout}`);
    const serializable = await etcdctlAsync(leader.endpoint, ["get", "partitioned", "--consistency=s"], 10_000);
    assert.equal(serializable.status, 0, serializable.stderr);
    assert.equal(serializable.stdout, "", "the isolated member cannot have seen the majority's write");
    const during = await cluster.status(leader);
    assert.equal(during?.raftIndex, before?.raftIndex, "the isolated member's commit index moved");

    cluster.heal();
    const deadline = Date.now() + 15_000;
    let read = { status: -1, stdout: "", stderr: "" };
    while (Date.now() < deadline) {
      read = await etcdctlAsync(leader.endpoint, ["get", "partitioned", "--print-value-only", "--command-timeout=2s"], 10_000);
      if (read.status === 0 && read.stdout === "majority\n") break;
      await sleep(200);
    }
    assert.equal(read.stdout, "majority\n", `the healed member did not catch up: ${read.stderr}`);
    await cluster.waitForLeader({ timeoutMs: 10_000 });
  });
});

describe("tetcd membership changes under write load", { skip, timeout: 150_000 }, () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster("tetcd", 3);
  });
  after(async () => {
    await cluster?.stop();
  });

  test("a learner is added, catches up and is promoted, then a member is removed, while writes go on", { timeout: 90_000 }, async () => {
    const original = [...cluster.members];
    const load = new WriteLoad(cluster.endpoints(original), 6);
    let removed: ClusterMember | undefined;
    try {
      await load.waitForMore(100);
      const learner = await cluster.prepareJoin("m3", { learner: true });
      await learner.start();
      await load.waitForMore(100);
      const promote = await eventually(cluster.endpoints(original), ["member", "promote", learner.id!]);
      assert.match(promote.stdout, new RegExp(`^Member +${learner.id} promoted in cluster +[0-9a-f]+\n$`), promote.stderr);
      assert.equal((await cluster.status(learner))?.isLearner, false);
      await load.waitForMore(100);

      const leader = await cluster.waitForLeader();
      removed = original.find((member) => member !== leader)!;
      const remove = await eventually(cluster.endpoints(original), ["member", "remove", removed.id!]);
      assert.match(remove.stdout, new RegExp(`^Member +${removed.id} removed from cluster +[0-9a-f]+\n$`), remove.stderr);
      await load.waitForMore(100);
      const list = await etcdctlAsync(leader.endpoint, ["member", "list"]);
      assert.doesNotMatch(list.stdout, new RegExp(removed.id!));
      assert.match(list.stdout, new RegExp(`${learner.id}, started, m3, `));
    } finally {
      await load.stop();
    }
    await assertNothingLost(cluster.members.filter((member) => member !== removed), load.acknowledged);
  });
});

describe("a member added after 10,000 writes", { skip, timeout: 180_000 }, () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster("tetcd", 3, { extraArgs: ["--snapshot-count", "1000"] });
  });
  after(async () => {
    await cluster?.stop();
  });

  test("catches up through a snapshot of the backend, with the same KV hash as the others", { timeout: 150_000 }, async () => {
    const load = new WriteLoad(cluster.endpoints(), 32);
    try {
      await load.waitForMore(10_000, 120_000);
    } finally {
      await load.stop();
    }
    const joining = await cluster.prepareJoin("m3", { extraArgs: ["--snapshot-count", "1000"] });
    await joining.start();
    await assertNothingLost([joining], load.acknowledged, 30_000);
    assert.match(joining.output(), /"msg":"applied snapshot"/, "the new member caught up without a snapshot");
    const hashes = new Set<string>();
    for (const member of cluster.members) {
      const hash = await etcdctlAsync(member.endpoint, ["endpoint", "hashkv", "-w", "json"]);
      assert.equal(hash.status, 0, hash.stderr);
      hashes.add(String((parseBigJson(hash.stdout) as Array<{ HashKV: { hash: unknown } }>)[0]!.HashKV.hash));
    }
    assert.equal(hashes.size, 1, `members disagree on the KV hash: ${[...hashes].join(", ")}`);
  });
});
