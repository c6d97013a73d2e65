import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { serviceDefinition } from "../../src/api/grpc.js";
import {
  Auth,
  AuthenticateRequestSchema,
  AuthenticateResponseSchema,
  LeaseGrantRequestSchema,
  LeaseGrantResponseSchema,
  LeaseRevokeRequestSchema,
  PutRequestSchema,
  RangeRequestSchema,
  RangeResponseSchema,
  TxnRequestSchema,
  Watch,
  WatchRequestSchema,
  type WatchResponse,
} from "../../src/gen/etcdserverpb/rpc_pb.js";
import { EtcdClient, ServiceClient, type CallResult } from "../support/client.js";
import { etcdctl, startEtcd, startTetcd, type ServerProcess } from "../support/processes.js";

/**
 * Getting in where etcd 3.4 refuses, tried as an attacker would, on etcd and
 * tetcd alike (auth on, simple tokens living 3 s): a forged token, an expired
 * one, a token kept after a password change, a token whose role lost the
 * permission, a range end that widens the range, a txn compare or a watch on
 * a key outside the user's prefix, revoking a lease that holds another's key.
 * Each must be refused with etcd's code and message, and change nothing.
 */
const tokenTtlSeconds = 3;
const b = (text: string): Buffer => Buffer.from(text);

interface Side {
  server: ServerProcess;
  client: EtcdClient;
  auth: ServiceClient;
}

type Outcome = { ok: true } | { ok: false; code: number; message: string };

function outcome(result: CallResult<unknown>): Outcome {
  return result.ok ? { ok: true } : { ok: false, code: result.code, message: result.message };
}

async function token(side: Side, name: string, password: string): Promise<string> {
  const reply = await side.auth.call("authenticate", AuthenticateRequestSchema, { name, password }, AuthenticateResponseSchema, 10_000);
  assert.ok(reply.ok, `authenticate ${name}: ${reply.ok ? "" : reply.message}`);
  return reply.response.token;
}

/** The first answer of a watch created with `token` on `key`. */
async function firstWatchResponse(endpoint: string, key: string, tokenValue: string): Promise<Pick<WatchResponse, "created" | "canceled" | "cancelReason">> {
  const Client = grpc.makeGenericClientConstructor(serviceDefinition(Watch), "Watch");
  const client = new Client(endpoint, grpc.credentials.createInsecure()) as unknown as grpc.Client & { watch(metadata: grpc.Metadata): grpc.ClientDuplexStream<unknown, WatchResponse> };
  const metadata = new grpc.Metadata();
  metadata.set("token", tokenValue);
  const stream = client.watch(metadata);
  try {
    const first = new Promise<WatchResponse>((resolve, reject) => {
      stream.once("data", resolve);
      stream.once("error", reject);
      setTimeout(() => reject(new Error("no watch response within 10 s")), 10_000);
    });
    stream.write(create(WatchRequestSchema, { requestUnion: { case: "createRequest", value: { key: b(key) } } }));
    const response = await first;
    return { created: response.created, canceled: response.canceled, cancelReason: response.cancelReason };
  } finally {
    stream.cancel();
    client.close();
  }
}

describe("auth refusals, tetcd beside etcd 3.4", { timeout: 120_000 }, () => {
  const sides: Side[] = [];
  before(async () => {
    const args = ["--auth-token-ttl", String(tokenTtlSeconds)];
    for (const server of await Promise.all([startEtcd({ extraArgs: args }), startTetcd({ extraArgs: args })])) {
      for (const command of [["user", "add", "root:rootpw"], ["role", "add", "root"], ["user", "grant-role", "root", "root"], ["role", "add", "app"], ["role", "grant-permission", "app", "readwrite", "app/", "--prefix"], ["user", "add", "alice:alicepw"], ["user", "grant-role", "alice", "app"], ["put", "secret", "s0"], ["auth", "enable"]]) {
        const result = etcdctl(server.endpoint, command);
        assert.equal(result.status, 0, `${command.join(" ")}: ${result.stderr}`);
      }
      sides.push({ server, client: new EtcdClient(server.endpoint), auth: new ServiceClient(Auth, server.endpoint) });
    }
  });
  after(async () => {
    for (const side of sides) {
      side.client.close();
      side.auth.close();
    }
    await Promise.all(sides.map((side) => side.server.stop()));
  });

  /** Runs `attempt` on both sides; the outcomes must be equal; returns etcd's. */
  async function both(attempt: (side: Side) => Promise<Outcome>): Promise<Outcome> {
    const [etcd, tetcd] = [await attempt(sides[0]!), await attempt(sides[1]!)];
    assert.deepEqual(tetcd, etcd);
    return etcd;
  }

  async function secretUnchanged(): Promise<void> {
    for (const side of sides) {
      const rootToken = await token(side, "root", "rootpw");
      const read = await side.client.kv.call("range", RangeRequestSchema, { key: b("secret") }, RangeResponseSchema, 10_000, { token: rootToken });
      assert.ok(read.ok);
      assert.equal(Buffer.from(read.response.kvs[0]!.value).toString(), "s0", "nothing the refused requests touched changed");
    }
  }

  test("a forged token, and no token at all", async () => {
    assert.deepEqual(await both((side) => side.client.kv.call("range", RangeRequestSchema, { key: b("app/x") }, undefined, 10_000, { token: "AAAAAAAAAAAAAAAA.7" }).then(outcome)), { ok: false, code: 16, message: "etcdserver: invalid auth token" });
    assert.deepEqual(await both((side) => side.client.kv.call("put", PutRequestSchema, { key: b("secret"), value: b("x") }, undefined, 10_000).then(outcome)), { ok: false, code: 3, message: "etcdserver: user name is empty" });
    await secretUnchanged();
  });

  test("reads outside the prefix: a range end that widens the range, a txn compare, a watch", async () => {
    const refused = { ok: false, code: 7, message: "etcdserver: permission denied" };
    assert.deepEqual(await both(async (side) => outcome(await side.client.kv.call("range", RangeRequestSchema, { key: b("app/"), rangeEnd: b("app0") }, undefined, 10_000, { token: await token(side, "alice", "alicepw") }))), { ok: true });
    assert.deepEqual(await both(async (side) => outcome(await side.client.kv.call("range", RangeRequestSchema, { key: b("app/"), rangeEnd: b("b") }, undefined, 10_000, { token: await token(side, "alice", "alicepw") }))), refused);
    assert.deepEqual(await both(async (side) => outcome(await side.client.kv.call("range", RangeRequestSchema, { key: b("app/"), rangeEnd: Buffer.from([0]) }, undefined, 10_000, { token: await token(side, "alice", "alicepw") }))), refused);
    const compareOnSecret = { compare: [{ key: b("secret"), target: 3, result: 0, targetUnion: { case: "value" as const, value: b("s0") } }], success: [{ request: { case: "requestPut" as const, value: { key: b("app/leak"), value: b("yes") } } }] };
    assert.deepEqual(await both(async (side) => outcome(await side.client.kv.call("txn", TxnRequestSchema, compareOnSecret, undefined, 10_000, { token: await token(side, "alice", "alicepw") }))), refused);
    const watches = await Promise.all(sides.map(async (side) => firstWatchResponse(side.server.endpoint, "secret", await token(side, "alice", "alicepw"))));
    assert.deepEqual(watches[1], watches[0]);
    assert.equal(watches[0]!.canceled, true, "etcd refuses the watch");
    await secretUnchanged();
  });

  test("revoking a lease that holds a key outside the prefix", async () => {
    const results = await both(async (side) => {
      const aliceToken = await token(side, "alice", "alicepw");
      const lease = await side.client.lease.call("leaseGrant", LeaseGrantRequestSchema, { TTL: 60n }, LeaseGrantResponseSchema, 10_000, { token: aliceToken });
      assert.ok(lease.ok);
      const rootToken = await token(side, "root", "rootpw");
      assert.ok((await side.client.kv.call("put", PutRequestSchema, { key: b("secret-leased"), value: b("v"), lease: lease.response.ID }, undefined, 10_000, { token: rootToken })).ok);
      return outcome(await side.client.lease.call("leaseRevoke", LeaseRevokeRequestSchema, { ID: lease.response.ID }, undefined, 10_000, { token: aliceToken }));
    });
    assert.deepEqual(results, { ok: false, code: 7, message: "etcdserver: permission denied" });
  });

  test("a token kept after a password change, after its role lost the permission, and after it expired", async () => {
    const tokens = await Promise.all(sides.map((side) => token(side, "alice", "alicepw")));
    for (const side of sides) assert.equal(etcdctl(side.server.endpoint, ["user", "passwd", "alice", "--interactive=false", "--user", "root:rootpw"], "alicepw2\n").status, 0);
    assert.deepEqual(await both(async (side) => outcome(await side.client.kv.call("range", RangeRequestSchema, { key: b("app/x") }, undefined, 10_000, { token: tokens[sides.indexOf(side)]! }))), { ok: false, code: 16, message: "etcdserver: invalid auth token" });

    const fresh = await Promise.all(sides.map((side) => token(side, "alice", "alicepw2")));
    for (const side of sides) assert.equal(etcdctl(side.server.endpoint, ["role", "revoke-permission", "app", "app/", "--prefix", "--user", "root:rootpw"]).status, 0);
    assert.deepEqual(await both(async (side) => outcome(await side.client.kv.call("put", PutRequestSchema, { key: b("app/x"), value: b("late") }, undefined, 10_000, { token: fresh[sides.indexOf(side)]! }))), { ok: false, code: 7, message: "etcdserver: permission denied" });

    const idle = await Promise.all(sides.map((side) => token(side, "alice", "alicepw2")));
    await sleep((tokenTtlSeconds + 2) * 1000);
    assert.deepEqual(await both(async (side) => outcome(await side.client.kv.call("range", RangeRequestSchema, { key: b("app/x") }, undefined, 10_000, { token: idle[sides.indexOf(side)]! }))), { ok: false, code: 16, message: "etcdserver: invalid auth token" });
    await secretUnchanged();
  });
});
