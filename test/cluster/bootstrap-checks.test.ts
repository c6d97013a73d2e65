// Starts a running cluster must refuse: a member whose data dir was lost,
// --initial-cluster that does not describe the cluster being joined, and
// (tetcd) a data dir started as another member. Where etcd 3.4 refuses too,
// both are run and must refuse with the same words.
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { startCluster, type Cluster, type ClusterMember } from "../support/cluster.js";
import { freePort, hasCommand } from "../support/processes.js";

const missing = ["etcd", "etcdctl"].filter((command) => !hasCommand(command));
const skip = missing.length === 0 ? false : `${missing.join(" and ")} not installed`;

/** Asserts that the start exited on its own, with an error, saying `expected`. */
function assertRefused(result: { exitCode: number | null; output: string }, expected: RegExp): void {
  assert.ok(result.exitCode !== null && result.exitCode !== 0, `exit code ${result.exitCode}:\n${result.output.slice(-3000)}`);
  assert.match(result.output, expected);
}

function initialCluster(members: readonly ClusterMember[], peerUrlOf = (member: ClusterMember) => member.advertisedPeerUrl): string {
  return members.map((member) => `${member.name}=${peerUrlOf(member)}`).join(",");
}

for (const kind of ["etcd", "tetcd"] as const) {
  describe(`${kind}: starts a running 3-member cluster refuses`, { skip, timeout: 120_000 }, () => {
    let cluster: Cluster;
    before(async () => {
      cluster = await startCluster(kind, 3);
    });
    after(async () => {
      await cluster?.stop();
    });

    if (kind === "tetcd") {
      // etcd 3.4 would serve the data dir under the new name; tetcd refuses it.
      test("a data dir started under another member's name is refused, and starts again as its own member", { timeout: 40_000 }, async () => {
        const member = cluster.members[1]!;
        await member.kill();
        const refused = await member.runToExit({ "--name": cluster.members[0]!.name });
        assertRefused(refused, new RegExp(`data dir .* belongs to member ${member.id} named "${member.name}" of cluster [0-9a-f]+, not to --name "${cluster.members[0]!.name}"`));
        await member.start();
        await cluster.waitForLeader();
      });
    }

    test("a member whose data dir was lost cannot bootstrap again", { timeout: 30_000 }, async () => {
      const member = cluster.members[2]!;
      await member.kill();
      rmSync(member.dataDir, { recursive: true, force: true });
      assertRefused(await member.runToExit({}), new RegExp(`member ${member.id} has already been bootstrapped`));
    });

    test("joining with an --initial-cluster that leaves a member out: member count is unequal", { timeout: 30_000 }, async () => {
      const [first, , lost] = cluster.members as [ClusterMember, ClusterMember, ClusterMember];
      const result = await lost.runToExit({ "--initial-cluster-state": "existing", "--initial-cluster": initialCluster([first, lost]) });
      assertRefused(result, /error validating peerURLs .*: member count is unequal/);
    });

    test("joining with peer URLs the cluster does not know: no match found for the existing member", { timeout: 30_000 }, async () => {
      const lost = cluster.members[2]!;
      const elsewhere = `http://127.0.0.1:${await freePort()}`;
      const result = await lost.runToExit({
        "--initial-cluster-state": "existing",
        "--initial-cluster": initialCluster(cluster.members, (member) => (member === lost ? elsewhere : member.advertisedPeerUrl)),
        "--initial-advertise-peer-urls": elsewhere,
      });
      assertRefused(result, new RegExp(`error validating peerURLs .*: PeerURLs: no match found for existing member \\(${lost.id}, \\[${lost.advertisedPeerUrl}\\]\\)`));
    });

    if (kind === "tetcd") {
      // etcd 3.4 starts such a member and then panics (tocommit out of range):
      // the leader remembers a log the member no longer has.
      test("a member whose data dir was lost cannot join as existing either", { timeout: 30_000 }, async () => {
        const lost = cluster.members[2]!;
        const result = await lost.runToExit({ "--initial-cluster-state": "existing" });
        assertRefused(result, new RegExp(`member ${lost.id} has already been bootstrapped`));
      });
    }
  });
}
