// Maintenance.Snapshot through the real etcdctl 3.4: etcd and tetcd are fed
// the same history, `etcdctl snapshot save` takes a snapshot of each, and
// `etcdctl snapshot status` reports the same revision and key count for both
// (the hashes differ only by the members bucket: ids and URLs). The two files
// hold the same key, lease and compaction records byte for byte. Then
// tetcd's snapshot is restored by `etcdctl snapshot restore`, and the etcd
// started on it serves the same keys, values, revisions, lease and
// compaction point as the tetcd it came from; and both snapshots are
// restored by `tetcd snapshot restore` (one, into a cluster of three), the
// tetcd started on each serving the store of the server it was saved from.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { BboltReader } from "../../src/snapshot/bbolt-reader.js";
import { EtcdClient } from "../support/client.js";
import { etcdctl, freePort, hasCommand, startEtcd, startTetcd, temporaryDirectory, tetcdBin, track, type ServerProcess } from "../support/processes.js";
import { applyHistory, assertSameStore, dumpStore, saveSnapshot, type StoreDump } from "./history.js";

function tetcdCommand(args: string[]): { status: number; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [tetcdBin, ...args], { encoding: "utf8", timeout: 60_000 });
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

interface Side {
  server: ServerProcess;
  client: EtcdClient;
  snapshot: string;
  dump: StoreDump;
}

function records(path: string, bucket: string): string[] {
  const reader = new BboltReader(path);
  try {
    return [...reader.records(bucket)].map(({ key, value }) => `${key.toString("hex")}=${value.toString("hex")}`);
  } finally {
    reader.close();
  }
}

describe("snapshots beside etcd 3.4", { timeout: 180_000 }, () => {
  const directory = temporaryDirectory("snapshots");
  const sides = new Map<"etcd" | "tetcd", Side>();
  let compactAt = 0;
  const stopped: ServerProcess[] = [];
  before(async () => {
    assert.ok(hasCommand("etcd") && hasCommand("etcdctl"), "etcd 3.4 and etcdctl must be installed");
    for (const kind of ["etcd", "tetcd"] as const) {
      const server = kind === "etcd" ? await startEtcd() : await startTetcd();
      stopped.push(server);
      const client = new EtcdClient(server.endpoint);
      compactAt = await applyHistory(client);
      const snapshot = join(directory, `${kind}.db`);
      assert.match(saveSnapshot(server.endpoint, snapshot), /^Snapshot saved at /m);
      sides.set(kind, { server, client, snapshot, dump: await dumpStore(client, compactAt) });
    }
  });
  after(async () => {
    for (const side of sides.values()) side.client.close();
    for (const server of stopped) await server.stop();
    rmSync(directory, { recursive: true, force: true });
  });
  const side = (kind: "etcd" | "tetcd"): Side => {
    const found = sides.get(kind);
    assert.ok(found !== undefined, `${kind} did not start`);
    return found;
  };

  test("the two servers hold the same store", () => {
    assertSameStore(side("tetcd").dump, side("etcd").dump, "tetcd beside etcd");
    assert.match(side("etcd").dump.belowCompaction, /compacted/);
  });

  test("the file ends with the sha256 of the database, as etcdctl snapshot restore checks", () => {
    const file = readFileSync(side("tetcd").snapshot);
    assert.equal(file.length % 512, 32);
    const database = file.subarray(0, file.length - 32);
    assert.ok(createHash("sha256").update(database).digest().equals(file.subarray(file.length - 32)));
  });

  test("etcdctl snapshot status: the same revision and key count, in the same forms", () => {
    const status = (kind: "etcd" | "tetcd", format: string) => etcdctl("127.0.0.1:1", ["snapshot", "status", side(kind).snapshot, "-w", format]);
    const etcd = JSON.parse(status("etcd", "json").stdout) as { hash: number; revision: number; totalKey: number; totalSize: number };
    const tetcd = JSON.parse(status("tetcd", "json").stdout) as typeof etcd;
    assert.equal(tetcd.revision, etcd.revision);
    assert.equal(tetcd.totalKey, etcd.totalKey);
    assert.ok(tetcd.totalSize > 0 && tetcd.totalSize % 4096 === 0);
    for (const format of ["simple", "table"]) {
      // etcdctl prints the hash in hex without leading zeros (1 to 8 digits), and pads the table's columns to it.
      const shape = (text: string): string =>
        text
          .replace(/(^|\| )[0-9a-f]{1,8}(?=,| +\|)/gm, "$1HASH")
          .replace(/\d+(\.\d+)? [kM]?B/g, "SIZE")
          .replace(/-+/g, "-")
          .replace(/ +/g, " ");
      assert.equal(shape(status("tetcd", format).stdout), shape(status("etcd", format).stdout), `-w ${format}`);
    }
  });

  test("the files hold the same buckets, and the same key, lease and compaction records", () => {
    const etcd = new BboltReader(side("etcd").snapshot);
    const tetcd = new BboltReader(side("tetcd").snapshot);
    try {
      assert.deepEqual(tetcd.bucketNames(), etcd.bucketNames());
    } finally {
      etcd.close();
      tetcd.close();
    }
    for (const bucket of ["key", "lease", "auth", "cluster", "alarm"]) {
      assert.deepEqual(records(side("tetcd").snapshot, bucket), records(side("etcd").snapshot, bucket), `bucket ${bucket}`);
    }
    const compaction = (path: string) => records(path, "meta").filter((record) => !record.startsWith(Buffer.from("consistent_index").toString("hex")));
    assert.deepEqual(compaction(side("tetcd").snapshot), compaction(side("etcd").snapshot));
  });

  test("etcd 3.4 restores tetcd's snapshot with etcdctl snapshot restore and serves the same store", async () => {
    const dataDir = join(directory, "restored-by-etcd");
    const clientPort = await freePort();
    const peer = `http://127.0.0.1:${await freePort()}`;
    const restore = etcdctl("127.0.0.1:1", ["snapshot", "restore", side("tetcd").snapshot, "--data-dir", dataDir, "--name", "restored", "--initial-cluster", `restored=${peer}`, "--initial-advertise-peer-urls", peer]);
    assert.equal(restore.status, 0, restore.stderr);
    const url = `http://127.0.0.1:${clientPort}`;
    const etcd = await track("etcd", ["--name", "restored", "--data-dir", dataDir, "--listen-client-urls", url, "--advertise-client-urls", url, "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", `restored=${peer}`], clientPort, dataDir, false);
    stopped.push(etcd);
    const client = new EtcdClient(etcd.endpoint);
    try {
      assertSameStore(await dumpStore(client, compactAt), side("tetcd").dump, "etcd restored from tetcd's snapshot");
    } finally {
      client.close();
    }
  });

  test("tetcd snapshot status prints what etcdctl snapshot status prints, in every form", () => {
    for (const kind of ["etcd", "tetcd"] as const) {
      for (const format of ["simple", "table", "json"]) {
        const expected = etcdctl("127.0.0.1:1", ["snapshot", "status", side(kind).snapshot, "-w", format]);
        const actual = tetcdCommand(["snapshot", "status", side(kind).snapshot, "-w", format]);
        assert.equal(actual.status, 0, actual.stderr);
        assert.equal(actual.stdout, expected.stdout, `${kind}'s snapshot, -w ${format}`);
      }
    }
  });

  test("tetcd snapshot restore refuses what etcd's restore refuses, and leaves no data dir", () => {
    const file = readFileSync(side("tetcd").snapshot);
    const corrupt = join(directory, "corrupt.db");
    const flipped = Buffer.from(file);
    flipped[5000] = flipped[5000]! ^ 0xff;
    writeFileSync(corrupt, flipped);
    const noHash = join(directory, "no-hash.db");
    writeFileSync(noHash, file.subarray(0, file.length - 32));
    const dataDir = join(directory, "refused");
    const corrupted = tetcdCommand(["snapshot", "restore", corrupt, "--data-dir", dataDir]);
    assert.equal(corrupted.status, 1);
    assert.match(corrupted.stderr, /^Error: expected sha256 \[[\d ]+\], got \[[\d ]+\]$/m);
    const missing = tetcdCommand(["snapshot", "restore", noHash, "--data-dir", dataDir]);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /^Error: snapshot missing hash but --skip-hash-check=false$/m);
    const exists = tetcdCommand(["snapshot", "restore", side("tetcd").snapshot, "--data-dir", directory]);
    assert.match(exists.stderr, new RegExp(`^Error: data-dir "${directory}" exists$`, "m"));
    const etcdExists = etcdctl("127.0.0.1:1", ["snapshot", "restore", side("tetcd").snapshot, "--data-dir", directory]);
    assert.match(etcdExists.stderr, new RegExp(`^Error: data-dir "${directory}" exists$`, "m"));
    assert.throws(() => readFileSync(join(dataDir, "member", "snap", "db", "data.mdb")));
  });

  for (const kind of ["tetcd", "etcd"] as const) {
    test(`tetcd restores ${kind}'s snapshot with tetcd snapshot restore and serves the same store`, async () => {
      const dataDir = join(directory, `tetcd-from-${kind}`);
      const clientPort = await freePort();
      const peer = `http://127.0.0.1:${await freePort()}`;
      const restore = tetcdCommand(["snapshot", "restore", side(kind).snapshot, "--data-dir", dataDir, "--name", "m1", "--initial-cluster", `m1=${peer}`, "--initial-advertise-peer-urls", peer, "--initial-cluster-token", "restored"]);
      assert.equal(restore.status, 0, restore.stderr);
      const url = `http://127.0.0.1:${clientPort}`;
      const tetcd = await track(process.execPath, [tetcdBin, "--name", "m1", "--data-dir", dataDir, "--listen-client-urls", url, "--advertise-client-urls", url, "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", `m1=${peer}`], clientPort, dataDir, false);
      stopped.push(tetcd);
      const client = new EtcdClient(tetcd.endpoint);
      try {
        assertSameStore(await dumpStore(client, compactAt), side(kind).dump, `tetcd restored from ${kind}'s snapshot`);
        const members = etcdctl(tetcd.endpoint, ["member", "list"]);
        assert.match(members.stdout, new RegExp(`^[0-9a-f]+, started, m1, ${peer}, ${url}, false$`, "m"));
      } finally {
        client.close();
        await tetcd.stop();
      }
    });
  }

  test("a three-member tetcd cluster restored from etcd's snapshot elects a leader and serves the same store on every member", async () => {
    const names = ["r1", "r2", "r3"];
    const peers = await Promise.all(names.map(async () => `http://127.0.0.1:${await freePort()}`));
    const clientPorts = await Promise.all(names.map(() => freePort()));
    const initialCluster = names.map((name, index) => `${name}=${peers[index]}`).join(",");
    const members: ServerProcess[] = [];
    for (const [index, name] of names.entries()) {
      const dataDir = join(directory, `cluster-${name}`);
      const restore = tetcdCommand(["snapshot", "restore", side("etcd").snapshot, "--data-dir", dataDir, "--name", name, "--initial-cluster", initialCluster, "--initial-advertise-peer-urls", peers[index]!, "--initial-cluster-token", "restored-cluster"]);
      assert.equal(restore.status, 0, restore.stderr);
    }
    const starts = names.map((name, index) => {
      const url = `http://127.0.0.1:${clientPorts[index]}`;
      const dataDir = join(directory, `cluster-${name}`);
      return track(process.execPath, [tetcdBin, "--name", name, "--data-dir", dataDir, "--listen-client-urls", url, "--advertise-client-urls", url, "--listen-peer-urls", peers[index]!, "--initial-advertise-peer-urls", peers[index]!, "--initial-cluster", initialCluster, "--initial-cluster-token", "restored-cluster"], clientPorts[index]!, dataDir, false);
    });
    members.push(...(await Promise.all(starts)));
    stopped.push(...members);
    try {
      for (const member of members) {
        const client = new EtcdClient(member.endpoint);
        try {
          let dump: StoreDump | undefined;
          for (let attempt = 0; attempt < 100 && dump === undefined; attempt++) {
            try {
              dump = await dumpStore(client, compactAt);
            } catch {
              await new Promise((resolve) => setTimeout(resolve, 100));
            }
          }
          assert.ok(dump !== undefined, `${member.endpoint} did not serve`);
          assertSameStore(dump, side("etcd").dump, `member ${member.endpoint} of the restored cluster`);
        } finally {
          client.close();
        }
      }
      const list = etcdctl(members[0]!.endpoint, ["member", "list"]);
      assert.equal(list.stdout.trim().split("\n").length, 3, list.stdout);
    } finally {
      for (const member of members) await member.stop();
    }
  });

  test("tetcd snapshot restore shows its progress on a terminal, and only there", () => {
    assert.ok(hasCommand("script"), "script (util-linux) must be installed to give the command a terminal");
    const onTerminal = join(directory, "progress-terminal");
    const command = [process.execPath, tetcdBin, "snapshot", "restore", side("etcd").snapshot, "--data-dir", onTerminal].map((word) => `'${word}'`).join(" ");
    const terminal = spawnSync("script", ["-qec", command, "/dev/null"], { encoding: "utf8", timeout: 60_000 });
    assert.equal(terminal.status, 0, terminal.stdout);
    assert.match(terminal.stdout, /restoring \|.*\| 100% \| [\d.]+ [kMG]?B of [\d.]+ [kMG]?B \| [\d.]+ [kMG]?B\/s/);
    const piped = tetcdCommand(["snapshot", "restore", side("etcd").snapshot, "--data-dir", join(directory, "progress-piped")]);
    assert.equal(piped.status, 0, piped.stderr);
    assert.doesNotMatch(piped.stderr, /restoring \|/);
  });
});
