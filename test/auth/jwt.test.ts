import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { SignJWT, importPKCS8 } from "jose";
import { readFileSync } from "node:fs";
import { AuthenticateRequestSchema, AuthenticateResponseSchema, Auth, PutRequestSchema, RangeRequestSchema } from "../../src/gen/etcdserverpb/rpc_pb.js";
import { EtcdClient, ServiceClient, type CallResult } from "../support/client.js";
import { etcdctl, startEtcd, startTetcd, type ServerProcess } from "../support/processes.js";

/**
 * JWT tokens (--auth-token jwt,pub-key=…,priv-key=…,sign-method=RS256,ttl=…)
 * on etcd 3.4 and tetcd started alike: etcdctl signs in and works; a token
 * signed with another key is refused; a token made before an auth change is
 * "old". Codes and messages compared.
 */
const directory = mkdtempSync(join(tmpdir(), "jwt-keys-"));
const openssl = (args: string[]): void => {
  execFileSync("openssl", args, { cwd: directory, stdio: ["ignore", "ignore", "pipe"], timeout: 20_000 });
};

type Outcome = { ok: true } | { ok: false; code: number; message: string };
const outcome = (result: CallResult<unknown>): Outcome => (result.ok ? { ok: true } : { ok: false, code: result.code, message: result.message });

describe("JWT tokens, tetcd beside etcd 3.4", { timeout: 120_000 }, () => {
  const servers: ServerProcess[] = [];
  before(async () => {
    openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "jwt.key"]);
    openssl(["pkey", "-in", "jwt.key", "-pubout", "-out", "jwt.pub"]);
    openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "other.key"]);
    const option = `jwt,pub-key=${join(directory, "jwt.pub")},priv-key=${join(directory, "jwt.key")},sign-method=RS256,ttl=10m`;
    servers.push(...(await Promise.all([startEtcd({ extraArgs: ["--auth-token", option] }), startTetcd({ extraArgs: ["--auth-token", option] })])));
    for (const server of servers) {
      for (const command of [["user", "add", "root:rootpw"], ["role", "add", "root"], ["user", "grant-role", "root", "root"], ["auth", "enable"]]) {
        assert.equal(etcdctl(server.endpoint, command).status, 0, command.join(" "));
      }
    }
  });
  after(async () => {
    await Promise.all(servers.map((server) => server.stop()));
    rmSync(directory, { recursive: true, force: true });
  });

  test("etcdctl signs in with a JWT token and works", () => {
    const outputs = servers.map((server) => {
      const put = etcdctl(server.endpoint, ["put", "k", "v", "--user", "root:rootpw"]);
      const get = etcdctl(server.endpoint, ["get", "k", "--user", "root:rootpw"]);
      return [put.status, put.stdout, get.status, get.stdout];
    });
    assert.deepEqual(outputs[0], [0, "OK\n", 0, "k\nv\n"]);
    assert.deepEqual(outputs[1], outputs[0]);
  });

  test("a token signed with another key, and a token made before an auth change, are refused as etcd refuses them", async () => {
    const otherKey = await importPKCS8(readFileSync(join(directory, "other.key"), "utf8"), "RS256");
    const forged = await new SignJWT({ username: "root", revision: 100 }).setProtectedHeader({ alg: "RS256" }).setExpirationTime("10m").sign(otherKey);
    const results: Outcome[][] = [];
    for (const server of servers) {
      const client = new EtcdClient(server.endpoint);
      const auth = new ServiceClient(Auth, server.endpoint);
      try {
        const signedIn = await auth.call("authenticate", AuthenticateRequestSchema, { name: "root", password: "rootpw" }, AuthenticateResponseSchema, 10_000);
        assert.ok(signedIn.ok);
        const token = signedIn.response.token;
        assert.equal(token.split(".").length, 3, "a JWT: header, payload, signature");
        const fresh = outcome(await client.kv.call("range", RangeRequestSchema, { key: Buffer.from("k") }, undefined, 10_000, { token }));
        const refused = outcome(await client.kv.call("range", RangeRequestSchema, { key: Buffer.from("k") }, undefined, 10_000, { token: forged }));
        assert.equal(etcdctl(server.endpoint, ["role", "add", "later", "--user", "root:rootpw"]).status, 0);
        const old = outcome(await client.kv.call("put", PutRequestSchema, { key: Buffer.from("k"), value: Buffer.from("stale") }, undefined, 10_000, { token }));
        results.push([fresh, refused, old]);
      } finally {
        client.close();
        auth.close();
      }
    }
    assert.deepEqual(results[0], [{ ok: true }, { ok: false, code: 16, message: "etcdserver: invalid auth token" }, { ok: false, code: 3, message: "etcdserver: revision of auth store is old" }]);
    assert.deepEqual(results[1], results[0]);
  });
});
