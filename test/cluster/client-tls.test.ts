// A 3-member tetcd cluster with TLS on both ports: peers over https with
// mutual TLS, clients on https with --client-cert-auth (next to the http
// client URLs the cluster helpers use), both restricted by --cipher-suites,
// driven by the real etcdctl.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import tls from "node:tls";
import { after, before, describe, test } from "node:test";
import { parseBigJson, startCluster, type Cluster } from "../support/cluster.js";
import { etcdctlAsync } from "../support/processes.js";
import { TestPki } from "../transport/tls-certs.js";

describe("a tetcd cluster with TLS on client and peer ports", { timeout: 120_000 }, () => {
  let cluster: Cluster | undefined;
  const pki = new TestPki();
  let client: string[] = [];
  let stranger: string[] = [];
  let credentials: { ca: Buffer; cert: Buffer; key: Buffer };

  before(async () => {
    pki.authority("ca");
    pki.authority("other-ca");
    const member = pki.member("member", "ca", true);
    const user = pki.member("user", "ca", true);
    const other = pki.member("stranger", "other-ca", true, "ca");
    client = ["--cacert", user.trustedCaFile!, "--cert", user.certFile, "--key", user.keyFile];
    credentials = { ca: readFileSync(user.trustedCaFile!), cert: readFileSync(user.certFile), key: readFileSync(user.keyFile) };
    stranger = ["--cacert", other.trustedCaFile!, "--cert", other.certFile, "--key", other.keyFile, "--dial-timeout", "1s", "--command-timeout", "2s"];
    const args = [
      "--peer-cert-file", member.certFile, "--peer-key-file", member.keyFile, "--peer-trusted-ca-file", member.trustedCaFile!, "--peer-client-cert-auth",
      "--cert-file", member.certFile, "--key-file", member.keyFile, "--trusted-ca-file", member.trustedCaFile!, "--client-cert-auth",
      "--cipher-suites", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    ];
    cluster = await startCluster("tetcd", 3, { peerScheme: "https", secureClientPorts: true, extraArgs: args });
  });
  after(async () => {
    await cluster?.stop();
    pki.remove();
  });

  const secure = (): string[] => cluster!.members.filter((member) => member.running).map((member) => member.secureEndpoint!);

  test("a write over TLS to one member is read over TLS from every member", async () => {
    const [first, ...others] = cluster!.members;
    const put = await etcdctlAsync(first!.secureEndpoint!, [...client, "put", "tls-cluster", "v1"]);
    assert.equal(put.stdout, "OK\n", put.stderr);
    for (const member of [first!, ...others]) {
      const read = await etcdctlAsync(member.secureEndpoint!, [...client, "get", "tls-cluster", "--print-value-only"]);
      assert.equal(read.stdout, "v1\n", `${member.name}: ${read.stderr}`);
    }
    const health = await etcdctlAsync(secure(), [...client, "endpoint", "health"]);
    assert.equal(health.status, 0, health.stderr);
    assert.equal(health.stderr.split("\n").filter((line) => line.includes("is healthy")).length, 3, health.stderr);
  });

  test("members list their https client URLs and https peer URLs", async () => {
    const list = await etcdctlAsync(cluster!.members[1]!.secureEndpoint!, [...client, "member", "list", "-w", "json"]);
    const members = (parseBigJson(list.stdout) as { members: Array<{ name: string; peerURLs: string[]; clientURLs: string[] }> }).members;
    assert.equal(members.length, 3, list.stderr);
    for (const listed of members) {
      const member = cluster!.members.find((candidate) => candidate.name === listed.name)!;
      assert.ok(listed.clientURLs.includes(`https://${member.secureEndpoint}`), JSON.stringify(listed));
      assert.match(listed.peerURLs[0]!, /^https:\/\//);
    }
  });

  test("a client with a certificate from another CA is refused by a follower", async () => {
    const leader = await cluster!.waitForLeader();
    const follower = cluster!.members.find((member) => member !== leader)!;
    const refused = await etcdctlAsync(follower.secureEndpoint!, [...stranger, "put", "tls-cluster", "stranger"]);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /context deadline exceeded/);
    const read = await etcdctlAsync(leader.secureEndpoint!, [...client, "get", "tls-cluster", "--print-value-only"]);
    assert.equal(read.stdout, "v1\n");
  });

  test("--cipher-suites holds on both ports: a suite not listed fails the handshake, a listed one is chosen", async () => {
    const member = cluster!.members[0]!;
    const handshake = (port: number, cipher: string): Promise<string | undefined> =>
      new Promise((resolve) => {
        const socket = tls.connect({ host: "127.0.0.1", port, ciphers: cipher, maxVersion: "TLSv1.2", servername: "localhost", ...credentials }, () => {
          resolve(socket.getCipher().name);
          socket.destroy();
        });
        socket.setTimeout(5_000, () => socket.destroy(new Error("timeout")));
        socket.on("error", () => resolve(undefined));
      });
    for (const port of [Number(new URL(member.peerUrl).port), Number(member.secureEndpoint!.split(":")[1])]) {
      assert.equal(await handshake(port, "ECDHE-ECDSA-CHACHA20-POLY1305"), undefined, `port ${port}`);
      assert.equal(await handshake(port, "ECDHE-ECDSA-AES256-GCM-SHA384"), "ECDHE-ECDSA-AES256-GCM-SHA384", `port ${port}`);
    }
  });

  test("after the leader is killed, writes over TLS go on through the others", async () => {
    const leader = await cluster!.waitForLeader();
    await leader.kill();
    await cluster!.waitForLeader({ among: cluster!.members.filter((member) => member !== leader), timeoutMs: 10_000 });
    const put = await etcdctlAsync(secure(), [...client, "put", "tls-cluster", "v2"]);
    assert.equal(put.stdout, "OK\n", put.stderr);
    await leader.start();
    const read = await etcdctlAsync(leader.secureEndpoint!, [...client, "get", "tls-cluster", "--print-value-only", "--consistency=l"]);
    assert.equal(read.stdout, "v2\n", read.stderr);
  });
});
