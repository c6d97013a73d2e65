// The bbolt writer and reader: files written from random buckets (empty ones,
// small ones kept inline, large ones several levels deep, values spanning
// overflow pages) are read back record by record, and the real etcdctl's
// `snapshot status` (which opens them with bbolt and runs its consistency
// check) accepts them and counts the same records. (No bucket is named
// `key`: etcdctl reads that one's keys as revisions.)
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { BboltReader } from "../../src/snapshot/bbolt-reader.js";
import { BboltFileWriter, type BucketSource } from "../../src/snapshot/bbolt-writer.js";
import { crc32c } from "../../src/pkg/crc32c.js";
import { etcdctl, hasCommand, temporaryDirectory } from "../support/processes.js";
import { Random } from "../support/random.js";

type Records = Array<{ key: Buffer; value: Buffer }>;

function randomBucket(random: Random, count: number, maxValueBytes: number): Records {
  const records = new Map<string, Buffer>();
  while (records.size < count) {
    const key = Buffer.from(Array.from({ length: 1 + random.int(0, 24 - 1) }, () => random.int(0, 256 - 1)));
    const value = Buffer.from(Array.from({ length: random.int(0, maxValueBytes + 1 - 1) }, () => random.int(0, 256 - 1)));
    records.set(key.toString("latin1"), value);
  }
  return [...records.entries()].map(([key, value]) => ({ key: Buffer.from(key, "latin1"), value })).sort((a, b) => Buffer.compare(a.key, b.key));
}

async function writeFile(path: string, buckets: ReadonlyMap<string, Records>): Promise<number> {
  const sources: BucketSource[] = [...buckets.entries()].map(([name, records]) => ({ name, records: () => records }));
  const writer = await BboltFileWriter.plan(sources);
  const chunks: Buffer[] = [];
  for await (const chunk of writer.chunks(32 * 1024)) {
    assert.ok(chunk.length <= 32 * 1024, "a chunk larger than asked for");
    chunks.push(chunk);
  }
  const file = Buffer.concat(chunks);
  assert.equal(file.length, writer.sizeBytes);
  // etcd's snapshot trailer: the sha256 of the database.
  writeFileSync(path, Buffer.concat([file, createHash("sha256").update(file).digest()]));
  return writer.sizeBytes;
}

/** What `etcdctl snapshot status` computes: a CRC-32C over bucket names, keys and values, and the record count. */
function statusOf(buckets: ReadonlyMap<string, Records>): { hash: number; totalKey: number } {
  let hash = 0;
  let totalKey = 0;
  for (const [name, records] of buckets) {
    hash = crc32c(Buffer.from(name), hash);
    for (const { key, value } of records) {
      hash = crc32c(value, crc32c(key, hash));
      totalKey++;
    }
  }
  return { hash, totalKey };
}

describe("bbolt files", { timeout: 120_000 }, () => {
  const shapes: Array<{ name: string; buckets: Array<[string, number, number]> }> = [
    { name: "empty buckets only", buckets: [["a", 0, 0], ["b", 0, 0]] },
    { name: "small inline buckets", buckets: [["alarm", 0, 0], ["auth", 1, 8], ["cluster", 3, 20]] },
    { name: "one bucket over many leaves and branches", buckets: [["keys", 40_000, 40]] },
    { name: "values over overflow pages", buckets: [["big", 40, 20_000], ["small", 10, 10]] },
    { name: "a mix", buckets: [["a", 5, 10], ["keys", 5_000, 300], ["lease", 200, 12], ["meta", 3, 17], ["z", 0, 0]] },
  ];
  for (const [index, shape] of shapes.entries()) {
    test(`${shape.name}: read back record by record, and etcdctl snapshot status agrees`, async () => {
      const random = new Random(1000 + index);
      const buckets = new Map(shape.buckets.map(([name, count, maxValueBytes]) => [name, randomBucket(random, count, maxValueBytes)] as const));
      const directory = temporaryDirectory("bbolt");
      try {
        const path = join(directory, "file.db");
        const sizeBytes = await writeFile(path, buckets);
        const reader = new BboltReader(path);
        try {
          assert.equal(reader.sizeBytes, sizeBytes);
          assert.deepEqual(reader.bucketNames(), [...buckets.keys()]);
          for (const [name, records] of buckets) {
            const read = [...reader.records(name)];
            assert.equal(read.length, records.length, `records of ${name}`);
            for (const [position, record] of records.entries()) {
              assert.ok(read[position]!.key.equals(record.key) && read[position]!.value.equals(record.value), `${name}: record ${position} differs`);
            }
          }
        } finally {
          reader.close();
        }
        if (!hasCommand("etcdctl")) throw new Error("etcdctl is not installed");
        const status = etcdctl("127.0.0.1:1", ["snapshot", "status", path, "-w", "json"]);
        assert.equal(status.status, 0, status.stderr);
        const expected = statusOf(buckets);
        const reported = JSON.parse(status.stdout) as { hash: number; totalKey: number; totalSize: number };
        assert.equal(reported.hash, expected.hash);
        assert.equal(reported.totalKey, expected.totalKey);
        assert.equal(reported.totalSize, sizeBytes);
      } finally {
        rmSync(directory, { recursive: true, force: true });
      }
    });
  }
});
