// --max-wals: how many WAL segments a member keeps once the backend covers
// them, and that a member restarts from however many it kept.
import assert from "node:assert/strict";
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { EtcdClient } from "../support/client.js";
import { startTetcd, temporaryDirectory } from "../support/processes.js";
import { assertPresent, populate } from "../support/puts.js";

const puts = 300;
/** A compaction, and so a new WAL segment, every this many applied entries. */
const snapshotCount = 20;

function segmentCount(dataDir: string): number {
  return readdirSync(join(dataDir, "member", "wal")).filter((name) => name.endsWith(".wal")).length;
}

for (const { maxWals, check } of [
  // A compaction runs while the entries of the newest rotation are still being applied: one segment more may remain.
  { maxWals: 2, check: (segments: number) => assert.ok(segments >= 2 && segments <= 3, `${segments} segments kept`) },
  // 0 keeps every segment: one from the start, and one more for each compaction.
  { maxWals: 0, check: (segments: number) => assert.ok(segments >= puts / snapshotCount - 1, `${segments} segments kept`) },
]) {
  test(`--max-wals ${maxWals}: the member keeps as many WAL segments as asked, and restarts from them with every put`, { timeout: 60_000 }, async () => {
    const dataDir = temporaryDirectory(`tetcd-max-wals-${maxWals}`);
    try {
      const args = ["--snapshot-count", String(snapshotCount), "--max-wals", String(maxWals)];
      const written = await populate(dataDir, puts, "kept", "SIGKILL", args);
      check(segmentCount(dataDir));
      const server = await startTetcd({ dataDir, extraArgs: args });
      const client = new EtcdClient(server.endpoint);
      try {
        await assertPresent(client, written);
      } finally {
        client.close();
        await server.stop();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
}
