import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, test } from "node:test";
import { encodeRecord, recordHeaderBytes, type WalRecord } from "../../src/wal/record.js";
import { Wal, WalCorruptError, walLimits } from "../../src/wal/wal.js";

let directory: string;

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), "tetcd-wal-test-"));
});

afterEach(() => {
  rmSync(directory, { recursive: true, force: true });
});

function record(index: number, size = 20): WalRecord {
  const payload = Buffer.alloc(size);
  for (let position = 0; position < size; position++) payload[position] = (index * 31 + position) & 0xff;
  if (size >= 4) payload.writeUInt32BE(index, 0);
  return { type: 1 + (index % 3), payload };
}

function summary(records: WalRecord[]): string[] {
  return records.map((entry) => `${entry.type}:${Buffer.from(entry.payload).toString("hex")}`);
}

function segmentFiles(): string[] {
  return readdirSync(directory).filter((name) => name.endsWith(".wal")).sort();
}

/** Writes `count` records, one append each, and closes the WAL; returns what was written. */
async function writeRecords(count: number, size = 20): Promise<WalRecord[]> {
  const { wal } = Wal.open(directory);
  const written: WalRecord[] = [];
  for (let index = 0; index < count; index++) {
    const entry = record(index, size);
    await wal.append([entry]);
    written.push(entry);
  }
  await wal.close();
  return written;
}

/** Opens the WAL and closes it again; returns the records it held. */
async function reopen(): Promise<WalRecord[]> {
  const { wal, records } = Wal.open(directory);
  await wal.close();
  return records;
}

/** Runs `body` with a smaller segment size limit, restoring it afterwards. */
async function withSegmentLimit<T>(bytes: number, body: () => Promise<T>): Promise<T> {
  const limits = walLimits as { segmentBytesMax: number };
  const saved = limits.segmentBytesMax;
  limits.segmentBytesMax = bytes;
  try {
    return await body();
  } finally {
    limits.segmentBytesMax = saved;
  }
}

test("open on an empty directory creates the first segment and holds no records", async () => {
  const { wal, records } = Wal.open(directory);
  assert.deepEqual(records, []);
  assert.deepEqual(segmentFiles(), ["0000000000000001.wal"]);
  assert.equal(wal.closedSegments, 0);
  await wal.close();
});

test("open creates a missing directory", async () => {
  const nested = join(directory, "member", "wal");
  const { wal, records } = Wal.open(nested);
  assert.deepEqual(records, []);
  assert.deepEqual(readdirSync(nested), ["0000000000000001.wal"]);
  await wal.close();
});

test("appended records come back in order after reopening", async () => {
  const written = await writeRecords(50);
  const { wal, records } = Wal.open(directory);
  assert.deepEqual(summary(records), summary(written));
  const more = [record(1000), record(1001, 0)];
  await wal.append(more);
  await wal.close();
  assert.deepEqual(summary(await reopen()), summary([...written, ...more]));
});

test("concurrent appends all resolve and land in call order", async () => {
  const { wal } = Wal.open(directory);
  const expected: WalRecord[] = [];
  const appends: Array<Promise<void>> = [];
  for (let call = 0; call < 200; call++) {
    const batch = [record(call * 2), record(call * 2 + 1, call % 40)];
    expected.push(...batch);
    appends.push(wal.append(batch));
  }
  await Promise.all(appends);
  // Everything acknowledged is in the file before close; past it, only preallocated zeros.
  const recordsBytes = expected.reduce((total, entry) => total + recordHeaderBytes + entry.payload.length, 0);
  const bytes = readFileSync(join(directory, "0000000000000001.wal"));
  assert.ok(bytes.subarray(recordsBytes).every((byte) => byte === 0), "nothing but zeros after the records");
  await wal.close();
  assert.equal(readFileSync(join(directory, "0000000000000001.wal")).length, recordsBytes, "closing cuts the preallocated space");
  assert.deepEqual(summary(await reopen()), summary(expected));
});

test("a torn last record is cut at every possible tear point, keeping the records before it", async () => {
  const written = await writeRecords(5, 30);
  const path = join(directory, "0000000000000001.wal");
  const whole = readFileSync(path);
  const lastLength = recordHeaderBytes + 30;
  const validEnd = whole.length - lastLength;
  for (let cut = 1; cut < lastLength; cut++) {
    writeFileSync(path, whole.subarray(0, whole.length - cut));
    const { wal, records } = Wal.open(directory);
    assert.deepEqual(summary(records), summary(written.slice(0, 4)), `cut ${cut} bytes`);
    assert.equal(statSync(path).size, validEnd, `cut ${cut} bytes: torn bytes removed from the file`);
    // New records go right after the valid ones and read back.
    const next = record(99);
    await wal.append([next]);
    await wal.close();
    assert.deepEqual(summary(await reopen()), summary([...written.slice(0, 4), next]), `cut ${cut} bytes`);
  }
});

test("a last record whose payload never reached the disk (zeros) is treated as torn", async () => {
  const written = await writeRecords(3, 30);
  const path = join(directory, "0000000000000001.wal");
  const bytes = readFileSync(path);
  bytes.fill(0, bytes.length - 30);
  writeFileSync(path, bytes);
  assert.deepEqual(summary(await reopen()), summary(written.slice(0, 2)));
});

test("a damaged byte in any non-final record of the last segment is an error naming the file and offset", async () => {
  await writeRecords(6, 24);
  const file = "0000000000000001.wal";
  const path = join(directory, file);
  const whole = readFileSync(path);
  const recordBytes = recordHeaderBytes + 24;
  const failures: string[] = [];
  // Damage each byte of the third record (offset 2 * recordBytes), header included.
  for (let position = 0; position < recordBytes; position++) {
    const offset = 2 * recordBytes;
    const damaged = Buffer.from(whole);
    damaged[offset + position] ^= 0xff;
    writeFileSync(path, damaged);
    try {
      const { wal } = Wal.open(directory);
      await wal.close();
      failures.push(`byte ${position}: opened without error, file now ${statSync(path).size} of ${whole.length} bytes`);
    } catch (error) {
      assert.ok(error instanceof WalCorruptError, `byte ${position}: ${String(error)}`);
      assert.equal(error.offset, offset, `byte ${position}`);
      assert.match(error.message, new RegExp(`${file}.*offset ${offset}`), `byte ${position}`);
      assert.equal(statSync(path).size, whole.length, `byte ${position}: a corrupt WAL is not truncated`);
    }
  }
  assert.deepEqual(failures, [], "every damaged byte must be reported, none silently truncated away");
});

test("a damaged length field that points past the end of the last segment is corruption, not a torn tail", async () => {
  // The high byte of a middle record's length: the record now claims ~4 GiB (over the maximum).
  const written = await writeRecords(10, 24);
  const path = join(directory, "0000000000000001.wal");
  const whole = readFileSync(path);
  const offset = 3 * (recordHeaderBytes + 24);
  const damaged = Buffer.from(whole);
  damaged[offset + 3] = 0x7f;
  writeFileSync(path, damaged);
  assert.throws(() => Wal.open(directory), (error: unknown) => error instanceof WalCorruptError && error.offset === offset);
  assert.equal(statSync(path).size, whole.length, "the seven acknowledged records after it must not be cut off");
  // The second byte: the record now claims a few hundred KiB, past the end of the file.
  const damaged2 = Buffer.from(whole);
  damaged2[offset + 2] = 0x05;
  writeFileSync(path, damaged2);
  assert.throws(() => Wal.open(directory), (error: unknown) => error instanceof WalCorruptError && error.offset === offset);
  assert.equal(statSync(path).size, whole.length);
  assert.equal(written.length, 10);
});

test("segments rotate past the size limit and are all read back in order", async () => {
  await withSegmentLimit(300, async () => {
    const { wal } = Wal.open(directory);
    const written: WalRecord[] = [];
    for (let index = 0; index < 40; index++) {
      const entry = record(index, 40);
      written.push(entry);
      await wal.append([entry]);
    }
    assert.ok(wal.closedSegments >= 5, `closed segments: ${wal.closedSegments}`);
    await wal.close();
    const files = segmentFiles();
    assert.equal(files.length, wal.closedSegments + 1);
    files.forEach((name, position) => assert.equal(name, `${(position + 1).toString(16).padStart(16, "0")}.wal`));
    for (const name of files.slice(0, -1)) assert.ok(statSync(join(directory, name)).size <= 300, name);
    assert.deepEqual(summary(await reopen()), summary(written));
  });
});

test("a torn record at the end of a segment that is not the last one is corruption", async () => {
  await withSegmentLimit(200, async () => {
    await writeRecords(20, 40);
  });
  const files = segmentFiles();
  assert.ok(files.length >= 3);
  const path = join(directory, files[0]!);
  const size = statSync(path).size;
  truncateSync(path, size - 5);
  assert.throws(
    () => Wal.open(directory),
    (error: unknown) => error instanceof WalCorruptError && error.message.includes(files[0]!) && error.offset === size - (recordHeaderBytes + 40),
  );
});

test("a damaged byte in an earlier segment is an error naming that segment", async () => {
  await withSegmentLimit(200, async () => {
    await writeRecords(20, 40);
  });
  const files = segmentFiles();
  const path = join(directory, files[1]!);
  const bytes = readFileSync(path);
  bytes[recordHeaderBytes + 5] ^= 0x10;
  writeFileSync(path, bytes);
  assert.throws(
    () => Wal.open(directory),
    (error: unknown) => error instanceof WalCorruptError && error.file.endsWith(files[1]!) && error.offset === 0 && /checksum/.test(error.message),
  );
});

test("rotateAndPurge keeps only a fresh segment, and later appends are all that reopen returns", async () => {
  const { wal } = Wal.open(directory);
  await wal.append([record(1), record(2)]);
  const pending = wal.append([record(3)]);
  await wal.rotateAndPurge([]);
  await pending;
  assert.deepEqual(segmentFiles(), ["0000000000000002.wal"]);
  assert.equal(wal.closedSegments, 0);
  await wal.append([record(4)]);
  await wal.rotateAndPurge([]);
  await wal.append([record(5), record(6)]);
  await wal.close();
  assert.deepEqual(segmentFiles(), ["0000000000000003.wal"]);
  assert.deepEqual(summary(await reopen()), summary([record(5), record(6)]));
});

test("purgeBefore with keep deletes the oldest segments before the given one while more than keep remain", async () => {
  const { wal } = Wal.open(directory);
  const sequences: number[] = [];
  for (let index = 1; index <= 5; index++) {
    await wal.append([record(index)]);
    sequences.push(await wal.rotate([]));
  }
  assert.equal(segmentFiles().length, 6);
  wal.purgeBefore(sequences[3]!, 3);
  // Segments 1 to 4 may go, but only three of the six are deleted: three remain.
  assert.deepEqual(segmentFiles(), ["0000000000000004.wal", "0000000000000005.wal", "0000000000000006.wal"]);
  wal.purgeBefore(sequences[1]!, 1);
  assert.equal(segmentFiles().length, 3, "nothing before segment 3 is left to delete");
  wal.purgeBefore(sequences[4]!, 1);
  assert.deepEqual(segmentFiles(), ["0000000000000006.wal"]);
  await wal.append([record(9)]);
  await wal.close();
  assert.deepEqual(summary(await reopen()), summary([record(9)]));
});

test("unrecognised files in the directory are ignored", async () => {
  const written = await writeRecords(3);
  writeFileSync(join(directory, "notes.txt"), "not a segment");
  writeFileSync(join(directory, "0000000000000001.wal.tmp"), encodeRecord(record(77)));
  assert.deepEqual(summary(await reopen()), summary(written));
});
