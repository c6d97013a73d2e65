import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { recordHeaderBytes } from "../../src/wal/record.js";
import { Wal, walLimits } from "../../src/wal/wal.js";

const record = (index: number) => ({ type: 2, payload: Buffer.from(`entry-${index}`) });
const summary = (records: Array<{ type: number; payload: Uint8Array }>) => records.map((entry) => `${entry.type}:${Buffer.from(entry.payload).toString()}`);

test("a segment in use is preallocated; abandoned without close (as by kill -9), it reopens with its records and goes on", async () => {
  const directory = mkdtempSync(join(tmpdir(), "wal-prealloc-"));
  try {
    const first = Wal.open(directory).wal;
    const written = Array.from({ length: 20 }, (_, index) => record(index));
    await first.append(written);
    const path = join(directory, "0000000000000001.wal");
    const recordsBytes = written.reduce((total, entry) => total + recordHeaderBytes + entry.payload.length, 0);
    const whileOpen = readFileSync(path);
    assert.equal(whileOpen.length, walLimits.preallocationBytes, "grown ahead of its records");
    assert.ok(whileOpen.subarray(recordsBytes).every((byte) => byte === 0));

    // No close: the zeros stay, as after a crash.
    const { wal: second, records } = Wal.open(directory);
    assert.deepEqual(summary(records), summary(written));
    await second.append([record(20)]);
    await second.close();
    assert.deepEqual(summary(Wal.open(directory).records), summary([...written, record(20)]));
    assert.equal(readFileSync(path).length, recordsBytes + recordHeaderBytes + record(20).payload.length, "closing cuts the zeros off");
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});
