// Leases and watches on a tetcd cluster: a lease kept alive through a follower
// survives the leader's death and expires on every member once it is no longer
// kept alive; a watch on a follower sees every acknowledged put exactly once,
// in revision order, across a leader change.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { parseBigJson, startCluster, type Cluster } from "../support/cluster.js";
import { etcdctlAsync, hasCommand } from "../support/processes.js";
import { WriteLoad } from "../support/write-load.js";

const skip = hasCommand("etcdctl") ? false : "etcdctl is not installed";

describe("leases on a tetcd cluster", { skip, timeout: 90_000 }, () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster("tetcd", 3);
  });
  after(async () => {
    await cluster?.stop();
  });

  test("a lease kept alive through a follower outlives the leader; left alone, it expires with its key on every member", { timeout: 60_000 }, async () => {
    const leader = await cluster.waitForLeader();
    const follower = cluster.members.find((member) => member !== leader)!;
    const granted = await etcdctlAsync(follower.endpoint, ["lease", "grant", "3"]);
    const lease = /^lease ([0-9a-f]+) granted with TTL\(3s\)/.exec(granted.stdout)?.[1];
    assert.ok(lease !== undefined, granted.stdout + granted.stderr);
    assert.equal((await etcdctlAsync(follower.endpoint, ["put", "leased", "v", `--lease=${lease}`])).status, 0);

    const once = await etcdctlAsync(follower.endpoint, ["lease", "keep-alive", "--once", lease]);
    assert.match(once.stdout, new RegExp(`^lease ${lease} keepalived with TTL\\(3\\)\\n$`), once.stderr);
    const ttl = await etcdctlAsync(follower.endpoint, ["lease", "timetolive", lease, "--keys"]);
    assert.match(ttl.stdout, new RegExp(`^lease ${lease} granted with TTL\\(3s\\), remaining\\([123]s\\), attached keys\\(\\[leased\\]\\)\\n$`), ttl.stderr);

    // Keep it alive through the follower while the leader dies and another is elected.
    const keepAlive = spawn("etcdctl", [`--endpoints=${follower.endpoint}`, "lease", "keep-alive", lease], { env: { ...process.env, ETCDCTL_API: "3" }, stdio: "ignore" });
    try {
      await sleep(1000);
      await leader.kill();
      await cluster.waitForLeader({ among: cluster.members.filter((member) => member !== leader), timeoutMs: 5_000 });
      await sleep(5000);
      const alive = await etcdctlAsync(follower.endpoint, ["get", "leased", "--print-value-only"]);
      assert.equal(alive.stdout, "v\n", "the kept-alive lease expired across the leader change");
    } finally {
      keepAlive.kill("SIGKILL");
    }
    await leader.start();
    const deadline = Date.now() + 15_000;
    let gone = false;
    while (!gone && Date.now() < deadline) {
      await sleep(250);
      const reads = await Promise.all(cluster.members.map((member) => etcdctlAsync(member.endpoint, ["get", "leased", "--consistency=s", "--print-value-only"])));
      gone = reads.every((read) => read.status === 0 && read.stdout === "");
    }
    assert.ok(gone, "the lease did not expire on every member once no longer kept alive");
    const after = await etcdctlAsync(follower.endpoint, ["lease", "timetolive", lease]);
    assert.match(after.stdout, new RegExp(`^lease ${lease} already expired\\n$`), after.stderr);
  });
});

describe("leases across a full tetcd cluster restart", { skip, timeout: 90_000 }, () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster("tetcd", 3);
  });
  after(async () => {
    await cluster?.stop();
  });

  test("a lease and its key survive every member stopping and starting again, with time left", { timeout: 60_000 }, async () => {
    const leader = await cluster.waitForLeader();
    const granted = await etcdctlAsync(leader.endpoint, ["lease", "grant", "30"]);
    const lease = /^lease ([0-9a-f]+) granted/.exec(granted.stdout)?.[1];
    assert.ok(lease !== undefined, granted.stdout + granted.stderr);
    assert.equal((await etcdctlAsync(leader.endpoint, ["put", "survivor", "v", `--lease=${lease}`])).status, 0);
    for (const member of cluster.members) await member.stop();
    await Promise.all(cluster.members.map((member) => member.start()));
    const newLeader = await cluster.waitForLeader({ timeoutMs: 10_000 });
    const ttl = await etcdctlAsync(newLeader.endpoint, ["lease", "timetolive", lease, "--keys"]);
    const remaining = Number(/remaining\((-?\d+)s\)/.exec(ttl.stdout)?.[1]);
    assert.ok(remaining > 0 && remaining <= 30, ttl.stdout + ttl.stderr);
    assert.match(ttl.stdout, /attached keys\(\[survivor\]\)/);
    for (const member of cluster.members) {
      const read = await etcdctlAsync(member.endpoint, ["get", "survivor", "--print-value-only"]);
      assert.equal(read.stdout, "v\n", `${member.name}: ${read.stderr}`);
    }
  });
});

/** The store's revision on `endpoint` now: a watch from the next one sees every later write, however long it takes to set up. */
async function nextRevision(endpoint: string): Promise<number> {
  const read = await etcdctlAsync(endpoint, ["get", "any-key", "-w", "json"]);
  return Number((parseBigJson(read.stdout) as { header: { revision: string | number } }).header.revision) + 1;
}

interface WatchLine {
  Header: { revision: string | number };
  Events?: Array<{ kv: { key: string; value: string; mod_revision: string | number } }>;
}

describe("watches on a tetcd cluster", { skip, timeout: 90_000 }, () => {
  let cluster: Cluster;
  before(async () => {
    cluster = await startCluster("tetcd", 3);
  });
  after(async () => {
    await cluster?.stop();
  });

  test("a watch on a follower sees every acknowledged put once, in revision order, across a leader change", { timeout: 60_000 }, async () => {
    const leader = await cluster.waitForLeader();
    const follower = cluster.members.find((member) => member !== leader)!;
    const from = await nextRevision(leader.endpoint);
    const watcher = spawn("etcdctl", [`--endpoints=${follower.endpoint}`, "watch", "--prefix", "load/", `--rev=${from}`, "-w", "json"], { env: { ...process.env, ETCDCTL_API: "3" } });
    let output = "";
    watcher.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const load = new WriteLoad(cluster.endpoints(cluster.members.filter((member) => member !== leader)), 4);
    try {
      await sleep(300);
      await load.waitForMore(200);
      await leader.kill();
      await cluster.waitForLeader({ among: cluster.members.filter((member) => member !== leader), timeoutMs: 5_000 });
      await load.waitForMore(200);
    } finally {
      await load.stop();
    }
    await leader.start();
    const seen = new Map<string, number>();
    let lastRevision = 0;
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      seen.clear();
      lastRevision = 0;
      for (const line of output.split("\n").filter((text) => text.startsWith("{"))) {
        for (const event of (parseBigJson(line) as WatchLine).Events ?? []) {
          const key = Buffer.from(event.kv.key, "base64").toString();
          const revision = Number(event.kv.mod_revision);
          assert.ok(revision > lastRevision, `event for ${key} at revision ${revision} after ${lastRevision}`);
          lastRevision = revision;
          assert.ok(!seen.has(key), `${key} delivered twice`);
          seen.set(key, revision);
        }
      }
      if ([...load.acknowledged.keys()].every((key) => seen.has(key))) break;
      await sleep(200);
    }
    watcher.kill("SIGKILL");
    const missing = [...load.acknowledged.keys()].filter((key) => !seen.has(key));
    assert.deepEqual(missing.slice(0, 5), [], `the watch missed ${missing.length} of ${load.acknowledged.size} acknowledged puts`);
  });

  test("a client that loses its member resumes on another from its last revision + 1 and loses nothing", { timeout: 60_000 }, async () => {
    const leader = await cluster.waitForLeader();
    const [watched, other] = cluster.members.filter((member) => member !== leader && member.running);
    assert.ok(watched !== undefined && other !== undefined, "two running followers");
    const from = await nextRevision(leader.endpoint);
    const first = spawn("etcdctl", [`--endpoints=${watched.endpoint}`, "watch", "--prefix", "resume/", `--rev=${from}`, "-w", "json"], { env: { ...process.env, ETCDCTL_API: "3" } });
    let firstOutput = "";
    first.stdout.on("data", (chunk: Buffer) => (firstOutput += chunk.toString()));
    const load = new WriteLoad(cluster.endpoints([leader]), 4, "resume/");
    let second: ReturnType<typeof spawn> | undefined;
    let secondOutput = "";
    try {
      await sleep(300);
      await load.waitForMore(150);
      await watched.kill();
      first.kill("SIGKILL");
      // The last revision this client saw, from its own output.
      let lastRevision = 0;
      for (const line of firstOutput.split("\n").filter((text) => text.startsWith("{"))) {
        for (const event of (parseBigJson(line) as WatchLine).Events ?? []) lastRevision = Math.max(lastRevision, Number(event.kv.mod_revision));
      }
      assert.ok(lastRevision > 0, "the first watch saw nothing");
      second = spawn("etcdctl", [`--endpoints=${other.endpoint}`, "watch", "--prefix", "resume/", `--rev=${lastRevision + 1}`, "-w", "json"], { env: { ...process.env, ETCDCTL_API: "3" } });
      second.stdout!.on("data", (chunk: Buffer) => (secondOutput += chunk.toString()));
      await load.waitForMore(150);
      await watched.start();
    } finally {
      await load.stop();
    }
    const seen = new Set<string>();
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      seen.clear();
      for (const text of [firstOutput, secondOutput]) {
        for (const line of text.split("\n").filter((candidate) => candidate.startsWith("{"))) {
          for (const event of (parseBigJson(line) as WatchLine).Events ?? []) {
            const key = Buffer.from(event.kv.key, "base64").toString();
            assert.ok(!seen.has(key), `${key} delivered twice across the two watches`);
            seen.add(key);
          }
        }
      }
      if ([...load.acknowledged.keys()].every((key) => seen.has(key))) break;
      await sleep(200);
    }
    second?.kill("SIGKILL");
    const missing = [...load.acknowledged.keys()].filter((key) => !seen.has(key));
    assert.deepEqual(missing.slice(0, 5), [], `the resumed watch missed ${missing.length} of ${load.acknowledged.size} acknowledged puts`);
  });
});
