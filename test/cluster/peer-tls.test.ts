// A 3-member tetcd cluster whose members talk over https with mutual TLS
// (--peer-cert-file, --peer-key-file, --peer-trusted-ca-file,
// --peer-client-cert-auth), as etcd runs them.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { parseBigJson, startCluster, type Cluster } from "../support/cluster.js";
import { etcdctlAsync, hasCommand } from "../support/processes.js";
import { TestPki } from "../transport/tls-certs.js";

const skip = hasCommand("etcdctl") && hasCommand("openssl") ? false : "etcdctl and openssl are needed";

describe("a tetcd cluster over mutual TLS between peers", { skip, timeout: 90_000 }, () => {
  let cluster: Cluster | undefined;
  let pki: TestPki | undefined;
  before(async () => {
    pki = new TestPki();
    pki.authority("ca");
    const tls = pki.member("member", "ca", true);
    const args = ["--peer-cert-file", tls.certFile, "--peer-key-file", tls.keyFile, "--peer-trusted-ca-file", tls.trustedCaFile!, "--peer-client-cert-auth"];
    cluster = await startCluster("tetcd", 3, { peerScheme: "https", extraArgs: args });
  });
  after(async () => {
    await cluster?.stop();
    pki?.remove();
  });

  test("the members elect a leader, replicate writes and list https peer URLs", { timeout: 30_000 }, async () => {
    const leader = await cluster!.waitForLeader();
    const follower = cluster!.members.find((member) => member !== leader)!;
    assert.equal((await etcdctlAsync(follower.endpoint, ["put", "over-tls", "v"])).stdout, "OK\n");
    for (const member of cluster!.members) {
      const read = await etcdctlAsync(member.endpoint, ["get", "over-tls", "--print-value-only"]);
      assert.equal(read.stdout, "v\n", `${member.name}: ${read.stderr}`);
    }
    const list = await etcdctlAsync(leader.endpoint, ["member", "list", "-w", "json"]);
    const members = (parseBigJson(list.stdout) as { members: Array<{ peerURLs: string[] }> }).members;
    assert.equal(members.length, 3);
    for (const member of members) assert.match(member.peerURLs[0]!, /^https:\/\/127\.0\.0\.1:\d+$/);
  });

  test("a killed leader is replaced over TLS", { timeout: 30_000 }, async () => {
    const leader = await cluster!.waitForLeader();
    await leader.kill();
    const next = await cluster!.waitForLeader({ among: cluster!.members.filter((member) => member !== leader), timeoutMs: 5_000 });
    assert.notEqual(next, leader);
    await leader.start();
    await cluster!.waitForLeader({ timeoutMs: 10_000 });
  });
});
