import assert from "node:assert/strict";
import type { JsonObject } from "@bufbuild/protobuf";
import { after, before, describe, test } from "node:test";
import { etcdctlAsync, hasCommand, startEtcd, startTetcd, type ServerProcess } from "../support/processes.js";
import { GatewayTransport, GrpcTransport, type Transport } from "./transports.js";
import { ServiceClient } from "../support/client.js";
import { Lock, LockRequestSchema, LockResponseSchema } from "../../src/gen/v3lockpb/v3lock_pb.js";

/**
 * The Lock and Election services against etcd 3.4: one script of calls (held
 * locks, waiters, a waiter's lease revoked, a holder's lease expiring,
 * campaigns, proclaims, resigns, an observer), run through gRPC and through
 * the JSON gateway on both servers, answers compared one by one (cluster and
 * member ids and raft terms aside). Leases are granted with fixed ids, so
 * keys (`<name>/<lease id in hex>`) compare too.
 */
const b64 = (text: string): string => Buffer.from(text).toString("base64");
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const waitStepMs = 20;
const waitMaxMs = 10_000;

/** Polls until `key` exists: a call that waits has written its key. */
async function keyWritten(transport: Transport, key: string): Promise<void> {
  for (let waited = 0; waited < waitMaxMs; waited += waitStepMs) {
    const answer = await transport.call("kv/range", { key: b64(key), count_only: true });
    if (answer["count"] === "1") return;
    await sleep(waitStepMs);
  }
  throw new Error(`key ${key} never appeared`);
}

/** Runs the script through `transport`; names and lease ids are made unique by `tag` and `leaseBase`. */
async function script(transport: Transport, tag: string, leaseBase: number): Promise<Array<[string, unknown]>> {
  const log: Array<[string, unknown]> = [];
  const step = async (label: string, answer: Promise<JsonObject> | JsonObject) => {
    const value = await answer;
    log.push([label, value]);
    return value;
  };
  const lease = (offset: number) => String(leaseBase + offset);
  const hex = (offset: number) => (leaseBase + offset).toString(16);
  const lockName = `${tag}-lock`;
  const electionName = `${tag}-election`;
  for (const offset of [1, 2, 3, 4]) await step(`grant ${offset}`, transport.call("lease/grant", { ID: lease(offset), TTL: "60" }));

  // Locks: a holder, a waiter, a lease that does not exist, the holder again.
  await step("lock by 1", transport.call("lock/lock", { name: b64(lockName), lease: lease(1) }));
  const waiter2 = transport.call("lock/lock", { name: b64(lockName), lease: lease(2) });
  await keyWritten(transport, `${lockName}/${hex(2)}`);
  await step("lock with no such lease", transport.call("lock/lock", { name: b64(lockName), lease: String(leaseBase + 99) }));
  await step("lock by 1 again (held)", transport.call("lock/lock", { name: b64(lockName), lease: lease(1) }));
  await step("unlock by 1", transport.call("lock/unlock", { key: b64(`${lockName}/${hex(1)}`) }));
  await step("waiter 2 gets the lock", waiter2);
  const waiter3 = transport.call("lock/lock", { name: b64(lockName), lease: lease(3) });
  await keyWritten(transport, `${lockName}/${hex(3)}`);
  await step("revoke the holder's lease", transport.call("lease/revoke", { ID: lease(2) }));
  await step("waiter 3 gets the lock", waiter3);
  await step("unlock by 3", transport.call("lock/unlock", { key: b64(`${lockName}/${hex(3)}`) }));
  await step("unlock of no key", transport.call("lock/unlock", { key: b64(`${lockName}/none`) }));

  // Elections.
  await step("no leader yet", transport.call("election/leader", { name: b64(electionName) }));
  const observer = transport.observe({ name: b64(electionName) });
  // Each leader change waits until the observer saw it: an observer that lags is told only the latest leader, by design.
  const seen = async (count: number) => {
    for (let waited = 0; observer.responses.length < count && waited < waitMaxMs; waited += waitStepMs) await sleep(waitStepMs);
  };
  const first = await step("campaign by 1", transport.call("election/campaign", { name: b64(electionName), value: b64("a"), lease: lease(1) }));
  await seen(1);
  const leader1 = first["leader"] as JsonObject;
  const candidate4 = transport.call("election/campaign", { name: b64(electionName), value: b64("b"), lease: lease(4) });
  await keyWritten(transport, `${electionName}/${hex(4)}`);
  await step("proclaim by 1", transport.call("election/proclaim", { leader: leader1, value: b64("a2") }));
  await seen(2);
  await step("campaign by 1 again, new value", transport.call("election/campaign", { name: b64(electionName), value: b64("a3"), lease: lease(1) }));
  await seen(3);
  await step("leader is 1", transport.call("election/leader", { name: b64(electionName) }));
  await step("resign by 1", transport.call("election/resign", { leader: leader1 }));
  const second = await step("candidate 4 leads", candidate4);
  await seen(4);
  await step("proclaim by 1 after resigning", transport.call("election/proclaim", { leader: leader1, value: b64("x") }));
  await step("proclaim without a leader key", transport.call("election/proclaim", { value: b64("x") }));
  await step("resign by 1 again", transport.call("election/resign", { leader: leader1 }));
  await step("resign without a leader key", transport.call("election/resign", {}));
  await step("campaign with no such lease", transport.call("election/campaign", { name: b64(electionName), value: b64("z"), lease: String(leaseBase + 99) }));
  await step("proclaim by 4", transport.call("election/proclaim", { leader: second["leader"] as JsonObject, value: b64("b2") }));
  await seen(5);
  await step("revoke the leader's lease", transport.call("lease/revoke", { ID: lease(4) }));
  await step("no leader again", transport.call("election/leader", { name: b64(electionName) }));
  await step("campaign by 3", transport.call("election/campaign", { name: b64(electionName), value: b64("c"), lease: lease(3) }));
  await seen(6);
  await sleep(200);
  observer.stop();
  log.push(["observed leaders", observer.responses]);
  return log;
}

/** A holder whose lease runs out: the waiter gets the lock once the lease expires. */
async function expiryScript(transport: Transport, tag: string, leaseBase: number): Promise<{ log: Array<[string, unknown]>; waitedMs: number }> {
  const log: Array<[string, unknown]> = [];
  const name = `${tag}-expiring`;
  log.push(["grant short", await transport.call("lease/grant", { ID: String(leaseBase + 1), TTL: "2" })]);
  log.push(["grant long", await transport.call("lease/grant", { ID: String(leaseBase + 2), TTL: "60" })]);
  log.push(["lock by short", await transport.call("lock/lock", { name: b64(name), lease: String(leaseBase + 1) })]);
  const started = Date.now();
  log.push(["waiter gets the lock", await transport.call("lock/lock", { name: b64(name), lease: String(leaseBase + 2) })]);
  const waitedMs = Date.now() - started;

  // A waiter whose own lease runs out while it waits: the lock says so once the holder lets go; a candidate is told it leads.
  const hex = (offset: number) => (leaseBase + offset).toString(16);
  log.push(["grant holder", await transport.call("lease/grant", { ID: String(leaseBase + 3), TTL: "60" })]);
  log.push(["grant short waiter", await transport.call("lease/grant", { ID: String(leaseBase + 4), TTL: "2" })]);
  log.push(["grant short candidate", await transport.call("lease/grant", { ID: String(leaseBase + 5), TTL: "2" })]);
  log.push(["holder locks", await transport.call("lock/lock", { name: b64(`${name}-2`), lease: String(leaseBase + 3) })]);
  const waiter = transport.call("lock/lock", { name: b64(`${name}-2`), lease: String(leaseBase + 4) });
  const leader = await transport.call("election/campaign", { name: b64(`${name}-e`), value: b64("l"), lease: String(leaseBase + 3) });
  log.push(["leader campaigns", leader]);
  const candidate = transport.call("election/campaign", { name: b64(`${name}-e`), value: b64("c"), lease: String(leaseBase + 5) });
  await keyWritten(transport, `${name}-2/${hex(4)}`);
  await keyWritten(transport, `${name}-e/${hex(5)}`);
  for (let waited = 0; waited < waitMaxMs; waited += waitStepMs) {
    const left = await transport.call("kv/range", { key: b64(`${name}-e/${hex(5)}`), count_only: true });
    if (left["count"] !== "1") break;
    await sleep(waitStepMs);
  }
  await sleep(300);
  log.push(["holder unlocks", await transport.call("lock/unlock", { key: b64(`${name}-2/${hex(3)}`) })]);
  log.push(["expired waiter's answer", await waiter]);
  log.push(["leader resigns", await transport.call("election/resign", { leader: leader["leader"] as JsonObject })]);
  log.push(["expired candidate's answer", await candidate]);
  return { log, waitedMs };
}

describe("Lock and Election services against etcd 3.4", { timeout: 180_000 }, () => {
  let etcd: ServerProcess;
  let tetcd: ServerProcess;

  before(async () => {
    assert.ok(hasCommand("etcd"), "the reference etcd must be installed");
    [etcd, tetcd] = await Promise.all([startEtcd(), startTetcd()]);
  });

  after(async () => {
    await Promise.all([etcd?.stop(), tetcd?.stop()]);
  });

  for (const [kind, make, tag, leaseBase] of [
    ["gRPC", (endpoint: string) => new GrpcTransport(endpoint), "g", 0x1000],
    ["the gateway", (endpoint: string) => new GatewayTransport(endpoint), "h", 0x2000],
  ] as const) {
    test(`the same calls through ${kind} get the same answers`, async () => {
      const [reference, ours] = [make(etcd.endpoint), make(tetcd.endpoint)];
      try {
        const [expected, actual] = await Promise.all([script(reference, tag, leaseBase), script(ours, tag, leaseBase)]);
        assert.equal(actual.length, expected.length);
        for (let index = 0; index < expected.length; index++) assert.deepEqual(actual[index], expected[index], `step ${expected[index]![0]}`);
        const observed = expected[expected.length - 1]![1] as unknown[];
        assert.equal(observed.length, 6, "the observer saw a, a2, a3, b, b2, c");
      } finally {
        reference.close();
        ours.close();
      }
    });
  }

  test("a holder's lease expiring hands the lock to the waiter; a waiter's or candidate's own lease expiring", async () => {
    const [reference, ours] = [new GrpcTransport(etcd.endpoint), new GrpcTransport(tetcd.endpoint)];
    try {
      const [expected, actual] = await Promise.all([expiryScript(reference, "x", 0x3000), expiryScript(ours, "x", 0x3000)]);
      assert.deepEqual(actual.log, expected.log);
      const last = actual.log.find(([label]) => label === "waiter gets the lock")![1] as JsonObject;
      assert.equal(Buffer.from(String(last["key"]), "base64").toString(), `x-expiring/${(0x3002).toString(16)}`);
      assert.ok(actual.waitedMs >= 1000, `the waiter waited for the expiry (${actual.waitedMs} ms)`);
    } finally {
      reference.close();
      ours.close();
    }
  });

  test("a waiter that gives up (its deadline passes) leaves no key behind", async () => {
    const runs = await Promise.all(
      [etcd, tetcd].map(async (server) => {
        const client = new ServiceClient(Lock, server.endpoint);
        const transport = new GrpcTransport(server.endpoint);
        try {
          for (const id of ["20481", "20482"]) await transport.call("lease/grant", { ID: id, TTL: "60" });
          const held = await transport.call("lock/lock", { name: b64("giving-up"), lease: "20481" });
          const gaveUp = await client.call("lock", LockRequestSchema, { name: Buffer.from("giving-up"), lease: 20482n }, LockResponseSchema, 500);
          await sleep(300);
          const left = await transport.call("kv/range", { key: b64("giving-up/"), range_end: b64("giving-up0") });
          return { held, gaveUp: gaveUp.ok ? "ok" : gaveUp.code, left };
        } finally {
          client.close();
          transport.close();
        }
      }),
    );
    assert.deepEqual(runs[1], runs[0]);
    assert.equal(runs[1]!.gaveUp, 4);
    assert.equal((runs[1]!.left["kvs"] as unknown[]).length, 1, "only the holder's key is left");
  });

  test("lease 0: the lock gets a lease of its own, which ends the hold", async () => {
    const transport = new GatewayTransport(tetcd.endpoint);
    try {
      const held = await transport.call("lock/lock", { name: b64("zero") });
      const key = Buffer.from(String(held["key"]), "base64").toString();
      assert.match(key, /^zero\/[0-9a-f]+$/);
      const leases = await fetch(`http://${tetcd.endpoint}/v3/lease/timetolive`, { method: "POST", body: JSON.stringify({ ID: BigInt(`0x${key.slice(5)}`).toString() }) });
      const ttl = (await leases.json()) as JsonObject;
      assert.equal(ttl["grantedTTL"] ?? ttl["grantedTTL"], "60");
    } finally {
      transport.close();
    }
  });

  test("etcdctl lock and elect work against tetcd as against etcd", async () => {
    const runs = await Promise.all(
      [etcd, tetcd].map(async (server) => {
        const locked = await etcdctlAsync(server.endpoint, ["lock", "ctl-lock", "echo", "held"], 10_000);
        const transport = new GrpcTransport(server.endpoint);
        try {
          await transport.call("lease/grant", { ID: "4660", TTL: "60" });
          await transport.call("election/campaign", { name: b64("ctl-election"), value: b64("leader-value"), lease: "4660" });
          // `elect -l` prints the current leader and then follows it; it is cut off after the first answer.
          const listened = await etcdctlAsync(server.endpoint, ["elect", "-l", "ctl-election"], 1500);
          return { locked, listened: listened.stdout };
        } finally {
          transport.close();
        }
      }),
    );
    assert.deepEqual(runs[1]!.locked, runs[0]!.locked);
    assert.equal(runs[1]!.locked.stdout, "held\n");
    assert.equal(runs[1]!.listened, runs[0]!.listened);
    assert.equal(runs[1]!.listened, "ctl-election/1234\nleader-value\n");
  });
});
