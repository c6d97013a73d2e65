// The Election service and the v2 keys API on a 3-member tetcd cluster: an
// observer on a follower sees every leader in order across the death of the
// raft leader; a v2 TTL runs out on every member (a watcher on a follower sees
// the expiry); a waitIndex watch is answered from history after a leader
// change and by a member restarted after it was killed.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { startCluster, type Cluster, type ClusterMember } from "../support/cluster.js";
import { GrpcTransport } from "../recipes/transports.js";
import { V2Client } from "../v2/v2-client.js";

const b64 = (text: string): string => Buffer.from(text).toString("base64");
const decode = (text: unknown): string => Buffer.from(String(text), "base64").toString();

async function waitFor(condition: () => boolean, timeoutMs: number): Promise<void> {
  for (let waited = 0; !condition() && waited < timeoutMs; waited += 20) await sleep(20);
}

describe("Election and v2 on a tetcd cluster", { timeout: 180_000 }, () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster("tetcd", 3, { extraArgs: ["--enable-v2"] });
  });
  after(async () => {
    await cluster?.stop();
  });

  /** The leader and the two others. */
  async function roles(): Promise<{ leader: ClusterMember; followers: ClusterMember[] }> {
    const leader = await cluster.waitForLeader();
    return { leader, followers: cluster.members.filter((member) => member !== leader && member.running) };
  }

  test("an observer sees every leader of an election in order across a leader kill", async () => {
    const { leader, followers } = await roles();
    const [observed, campaigner] = followers as [ClusterMember, ClusterMember];
    const observerClient = new GrpcTransport(observed.endpoint);
    const client = new GrpcTransport(campaigner.endpoint);
    try {
      for (const id of ["5001", "5002"]) assert.equal((await client.call("lease/grant", { ID: id, TTL: "60" }))["ID"], id);
      const observer = observerClient.observe({ name: b64("cluster-election") });
      const first = await client.call("election/campaign", { name: b64("cluster-election"), value: b64("one"), lease: "5001" });
      await waitFor(() => observer.responses.length >= 1, 10_000);
      const second = client.call("election/campaign", { name: b64("cluster-election"), value: b64("two"), lease: "5002" });
      // The second candidate's key is written (it waits on the first's) before the raft leader dies.
      for (let waited = 0; waited < 10_000; waited += 20) {
        const written = await client.call("kv/range", { key: b64(`cluster-election/${(5002).toString(16)}`), count_only: true });
        if (written["count"] === "1") break;
        await sleep(20);
      }

      await leader.kill();
      await cluster.waitForLeader({ among: followers });
      await client.call("election/proclaim", { leader: first["leader"]!, value: b64("one-again") });
      await waitFor(() => observer.responses.length >= 2, 10_000);
      await client.call("election/resign", { leader: first["leader"]! });
      const won = await second;
      assert.ok(won["leader"] !== undefined, JSON.stringify(won));
      assert.equal(decode((won["leader"] as Record<string, unknown>)["key"]), `cluster-election/${(5002).toString(16)}`);
      await waitFor(() => observer.responses.length >= 3, 10_000);
      observer.stop();
      const seen = observer.responses.map((response) => {
        const kv = response["kv"] as Record<string, unknown>;
        return `${decode(kv["key"])}=${decode(kv["value"])}`;
      });
      assert.deepEqual(seen, [`cluster-election/${(5001).toString(16)}=one`, `cluster-election/${(5001).toString(16)}=one-again`, `cluster-election/${(5002).toString(16)}=two`]);
    } finally {
      observerClient.close();
      client.close();
      if (!leader.running) await leader.start();
    }
  });

  test("a v2 TTL runs out on every member; a waitIndex watch is answered after a leader change and by a restarted member", async () => {
    const { leader, followers } = await roles();
    const writer = new V2Client(followers[0]!.endpoint);
    const watcher = new V2Client(followers[1]!.endpoint);
    const set = await writer.call({ method: "PUT", path: "/v2/keys/cluster/short", form: { value: "v", ttl: "2" } });
    assert.equal(set.status, 201);
    const index = Number(set.headers["x-etcd-index"]);
    const expiry = await watcher.call({ method: "GET", path: "/v2/keys/cluster/short", query: { wait: "true", waitIndex: String(index + 1) }, waitMs: 10_000 });
    assert.equal((expiry.body as { action: string }).action, "expire");
    for (const member of cluster.members) {
      const gone = await new V2Client(member.endpoint).call({ method: "GET", path: "/v2/keys/cluster/short" });
      assert.equal(gone.status, 404, `member ${member.name}`);
    }

    const kept = await writer.call({ method: "PUT", path: "/v2/keys/cluster/kept", form: { value: "k" } });
    const keptIndex = Number(kept.headers["x-etcd-index"]);
    await leader.kill();
    await cluster.waitForLeader({ among: followers });
    for (const member of followers) {
      const answer = await new V2Client(member.endpoint).call({ method: "GET", path: "/v2/keys/cluster/kept", query: { wait: "true", waitIndex: String(keptIndex) }, waitMs: 5000 });
      assert.equal((answer.body as { node: { value: string } }).node.value, "k", `member ${member.name}`);
    }
    await leader.start();
    const restarted = await new V2Client(leader.endpoint).call({ method: "GET", path: "/v2/keys/cluster/kept", query: { wait: "true", waitIndex: String(keptIndex) }, waitMs: 5000 });
    assert.equal((restarted.body as { node: { value: string; modifiedIndex: number } }).node.modifiedIndex, keptIndex);
  });
});

describe("the v2 store in raft snapshots", { timeout: 240_000 }, () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster("tetcd", 3, { extraArgs: ["--enable-v2", "--snapshot-count", "1000"] });
  });
  after(async () => {
    await cluster?.stop();
  });

  test("a member that missed more than the log keeps catches up through a snapshot, v2 keys and history included", async () => {
    const leader = await cluster.waitForLeader();
    const behind = cluster.members.find((member) => member !== leader)!;
    await behind.stop();
    const writer = new V2Client(leader.endpoint);
    const writers = 16;
    const writesEach = 450; // well past the 5,000 entries kept for slow followers, in all
    await Promise.all(
      Array.from({ length: writers }, async (_, writerIndex) => {
        for (let write = 0; write < writesEach; write++) {
          const answer = await writer.call({ method: "PUT", path: `/v2/keys/snap/w${writerIndex}`, form: { value: String(write) } });
          assert.ok(answer.status === 200 || answer.status === 201, JSON.stringify(answer));
        }
      }),
    );
    const last = await writer.call({ method: "PUT", path: "/v2/keys/snap/last", form: { value: "done" } });
    const lastIndex = Number(last.headers["x-etcd-index"]);
    await behind.start();
    const local = new V2Client(behind.endpoint);
    let listing: unknown;
    for (let waited = 0; waited < 30_000; waited += 200) {
      listing = (await local.call({ method: "GET", path: "/v2/keys/snap", query: { recursive: "true", sorted: "true" } })).body;
      if (JSON.stringify(listing).includes('"done"')) break;
      await sleep(200);
    }
    assert.match(behind.output(), /"msg":"applied snapshot"/, "the member caught up without a snapshot");
    const expected = (await writer.call({ method: "GET", path: "/v2/keys/snap", query: { recursive: "true", sorted: "true" } })).body;
    assert.deepEqual(listing, expected);
    const fromHistory = await local.call({ method: "GET", path: "/v2/keys/snap/last", query: { wait: "true", waitIndex: String(lastIndex) }, waitMs: 5000 });
    assert.equal((fromHistory.body as { node: { value: string } }).node.value, "done");
  });
});
