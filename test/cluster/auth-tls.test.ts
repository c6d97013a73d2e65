// A 3-member tetcd cluster with TLS on client and peer ports and auth on:
// a client certificate's common name is its user (--client-cert-auth), and
// the permissions hold on every member, after the leader is killed, and on a
// member that caught up through a snapshot.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { AuthenticateRequestSchema, AuthenticateResponseSchema, Auth, PutRequestSchema } from "../../src/gen/etcdserverpb/rpc_pb.js";
import { EtcdClient, ServiceClient } from "../support/client.js";
import { startCluster, type Cluster, type ClusterMember } from "../support/cluster.js";
import { etcdctlAsync } from "../support/processes.js";
import { TestPki } from "../transport/tls-certs.js";

const snapshotCount = 1000;
const bulkWrites = 7000;

describe("auth on a 3-member cluster with TLS on both ports", { timeout: 180_000 }, () => {
  let cluster: Cluster;
  const pki = new TestPki();
  let alice: string[] = [];
  let rootUser: string[] = [];

  before(async () => {
    pki.authority("ca");
    const member = pki.member("member", "ca", true);
    // The certificate's common name, "alice", is the user it signs in as.
    const user = pki.member("alice", "ca", true);
    alice = ["--cacert", user.trustedCaFile!, "--cert", user.certFile, "--key", user.keyFile];
    rootUser = [...alice, "--user", "root:rootpw"];
    const args = [
      "--peer-cert-file", member.certFile, "--peer-key-file", member.keyFile, "--peer-trusted-ca-file", member.trustedCaFile!, "--peer-client-cert-auth",
      "--cert-file", member.certFile, "--key-file", member.keyFile, "--trusted-ca-file", member.trustedCaFile!, "--client-cert-auth",
      "--snapshot-count", String(snapshotCount),
    ];
    cluster = await startCluster("tetcd", 3, { peerScheme: "https", secureClientPorts: true, extraArgs: args });
    const endpoint = cluster.members[0]!.endpoint;
    for (const command of [["user", "add", "root:rootpw"], ["role", "add", "root"], ["user", "grant-role", "root", "root"], ["role", "add", "app"], ["role", "grant-permission", "app", "readwrite", "app/", "--prefix"], ["user", "add", "alice:alicepw"], ["user", "grant-role", "alice", "app"], ["auth", "enable"]]) {
      const result = await etcdctlAsync(endpoint, command);
      assert.equal(result.status, 0, `${command.join(" ")}: ${result.stderr}`);
    }
  });
  after(async () => {
    await cluster?.stop();
    pki.remove();
  });

  /** On `member`'s TLS port: alice (by her certificate alone) writes in her prefix and is refused outside it; root writes anywhere. */
  async function permissionsHold(member: ClusterMember, suffix: string): Promise<void> {
    const inside = await etcdctlAsync(member.secureEndpoint!, [...alice, "put", `app/${suffix}`, "v"]);
    assert.equal(inside.stdout, "OK\n", `${member.name}: ${inside.stderr}`);
    const outside = await etcdctlAsync(member.secureEndpoint!, [...alice, "put", `secret/${suffix}`, "v"]);
    assert.notEqual(outside.status, 0);
    assert.match(outside.stderr, /etcdserver: permission denied/);
    const admin = await etcdctlAsync(member.secureEndpoint!, [...alice, "user", "list"]);
    assert.match(admin.stderr, /etcdserver: permission denied/, "alice is not root");
    const root = await etcdctlAsync(member.secureEndpoint!, [...rootUser, "put", `secret/${suffix}`, "root"]);
    assert.equal(root.stdout, "OK\n", root.stderr);
    const noUser = await etcdctlAsync(member.endpoint, ["get", "app/", "--prefix"]);
    assert.match(noUser.stderr, /etcdserver: user name is empty/, "the plain-text port has no certificate, so no user");
  }

  test("a certificate's common name is its user, on every member", async () => {
    for (const member of cluster.members) await permissionsHold(member, member.name);
  });

  test("after the leader is killed, the new leader and the others enforce the same permissions", async () => {
    const leader = await cluster.waitForLeader();
    await leader.kill();
    const others = cluster.members.filter((member) => member !== leader);
    await cluster.waitForLeader({ among: others, timeoutMs: 10_000 });
    for (const member of others) await permissionsHold(member, `after-kill-${member.name}`);
    await leader.start();
  });

  test("a member that caught up through a snapshot enforces them too", async () => {
    const leader = await cluster.waitForLeader();
    const lagging = cluster.members.find((member) => member !== leader)!;
    await lagging.kill();
    // Enough writes that the others compact their logs past what the stopped member has
    // (they keep 5,000 entries in memory after each snapshot).
    const auth = new ServiceClient(Auth, leader.endpoint);
    const client = new EtcdClient(leader.endpoint);
    try {
      const signedIn = await auth.call("authenticate", AuthenticateRequestSchema, { name: "root", password: "rootpw" }, AuthenticateResponseSchema, 10_000);
      assert.ok(signedIn.ok);
      const writers = 32;
      await Promise.all(
        Array.from({ length: writers }, async (_, writer) => {
          for (let index = writer; index < bulkWrites; index += writers) {
            const put = await client.kv.call("put", PutRequestSchema, { key: Buffer.from(`bulk/${index}`), value: Buffer.from("v") }, undefined, 10_000, { token: signedIn.response.token });
            assert.ok(put.ok, put.ok ? "" : put.message);
          }
        }),
      );
    } finally {
      auth.close();
      client.close();
    }
    await lagging.start();
    const deadline = Date.now() + 30_000;
    while (!lagging.output().includes("applied snapshot") && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
    assert.match(lagging.output(), /applied snapshot/, "the member caught up through a snapshot");
    await permissionsHold(lagging, "after-snapshot");
    const users = await etcdctlAsync(lagging.secureEndpoint!, [...rootUser, "user", "list"]);
    assert.equal(users.stdout, "alice\nroot\n", "users came with the snapshot");
  });
});
