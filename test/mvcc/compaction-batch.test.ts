import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { Lessor } from "../../src/lease/lessor.js";
import { Backend } from "../../src/mvcc/backend.js";
import { KvStore } from "../../src/mvcc/store.js";
import { temporaryDirectory } from "../support/processes.js";

test("compaction removes records in steps of the configured batch size", async () => {
  const directory = temporaryDirectory("tetcd-compaction-batch");
  const backend = new Backend({ path: join(directory, "db"), mapSizeBytes: 64 * 1024 * 1024 });
  try {
    const store = new KvStore(backend, new Lessor(backend), 7);
    for (let round = 0; round < 6; round++) {
      backend.write(() => {
        const txn = store.write();
        for (let index = 0; index < 10; index++) txn.put(`key-${index}`, Buffer.from(`v${round}`), 0n);
        txn.end();
      });
    }
    let writes = 0;
    const write = backend.write.bind(backend);
    backend.write = <T>(body: () => T): T => {
      writes++;
      return write(body);
    };
    const compacted = backend.write(() => store.compact(store.currentRevision));
    await compacted;
    // 60 records at or below the compaction, 7 a step: at least 9 steps besides the compaction's own entry.
    assert.ok(writes >= 10, `${writes} backend transactions`);
    await backend.flushed();
    let records = 0;
    backend.forEach("key", () => records++);
    assert.equal(records, 10, "only each key's latest record is left");
  } finally {
    await backend.close();
    rmSync(directory, { recursive: true, force: true });
  }
});
