import assert from "node:assert/strict";
import { test } from "node:test";
import { crc32c } from "../../src/pkg/crc32c.js";
import { decodeRecord, encodeRecord, recordHeaderBytes, recordPayloadBytesMax, type WalRecord } from "../../src/wal/record.js";

const samples: WalRecord[] = [
  { type: 2, payload: Buffer.from("hello, write-ahead log") },
  { type: 0, payload: new Uint8Array(0) },
  { type: 255, payload: Uint8Array.from({ length: 300 }, (_, index) => (index * 7) & 0xff) },
];

test("encodeRecord lays out length, CRC-32C of type and payload, type, payload", () => {
  const record = { type: 7, payload: Buffer.from("abc") };
  const bytes = encodeRecord(record);
  assert.equal(bytes.length, recordHeaderBytes + 3);
  assert.equal(recordHeaderBytes, 9);
  assert.equal(bytes.readUInt32LE(0), 3);
  assert.equal(bytes.readUInt32LE(4), crc32c(Buffer.from([7, 0x61, 0x62, 0x63])));
  assert.equal(bytes[8], 7);
  assert.deepEqual(bytes.subarray(9), Buffer.from("abc"));
});

test("decodeRecord returns the record and the offset after it", () => {
  for (const record of samples) {
    const bytes = encodeRecord(record);
    const result = decodeRecord(bytes, 0);
    assert.equal(result.kind, "record");
    if (result.kind !== "record") return;
    assert.equal(result.record.type, record.type);
    assert.deepEqual(Buffer.from(result.record.payload), Buffer.from(record.payload));
    assert.equal(result.next, bytes.length);
  }
});

test("decodeRecord on every prefix of a record is incomplete, and the whole is the record", () => {
  for (const record of samples) {
    const bytes = encodeRecord(record);
    for (let length = 0; length < bytes.length; length++) {
      const result = decodeRecord(bytes.subarray(0, length), 0);
      assert.deepEqual(result, { kind: "incomplete" }, `type ${record.type}, prefix of ${length} of ${bytes.length} bytes`);
    }
    assert.equal(decodeRecord(bytes, 0).kind, "record");
  }
});

test("a stream of records split at every byte boundary decodes to the same records", () => {
  const stream = Buffer.concat(samples.map(encodeRecord));
  for (let split = 0; split <= stream.length; split++) {
    // Accumulate chunks as a reader would: first chunk, then the rest appended.
    const decoded: WalRecord[] = [];
    let buffered = Buffer.from(stream.subarray(0, split));
    let offset = 0;
    const drain = (): void => {
      for (;;) {
        const result = decodeRecord(buffered, offset);
        assert.notEqual(result.kind, "corrupt", `split at ${split}`);
        if (result.kind !== "record") return;
        decoded.push({ type: result.record.type, payload: Buffer.from(result.record.payload) });
        offset = result.next;
      }
    };
    drain();
    buffered = Buffer.concat([buffered, stream.subarray(split)]);
    drain();
    assert.equal(offset, stream.length, `split at ${split}`);
    assert.deepEqual(
      decoded.map((record) => [record.type, Buffer.from(record.payload).toString("hex")]),
      samples.map((record) => [record.type, Buffer.from(record.payload).toString("hex")]),
      `split at ${split}`,
    );
  }
});

test("decodeRecord reads at an offset of a view with a non-zero byteOffset", () => {
  const record = samples[0]!;
  const backing = Buffer.concat([Buffer.from("garbage-"), encodeRecord(samples[1]!), encodeRecord(record), Buffer.from("-more")]);
  const view = new Uint8Array(backing.buffer, backing.byteOffset + 8, backing.length - 8 - 5);
  const first = decodeRecord(view, 0);
  assert.equal(first.kind, "record");
  if (first.kind !== "record") return;
  const second = decodeRecord(view, first.next);
  assert.equal(second.kind, "record");
  if (second.kind !== "record") return;
  assert.equal(second.record.type, record.type);
  assert.deepEqual(Buffer.from(second.record.payload), Buffer.from(record.payload));
  assert.equal(second.next, view.length);
});

test("flipping any bit of a record's checksum, type or payload is reported as corrupt", () => {
  const bytes = encodeRecord(samples[0]!);
  for (let position = 4; position < bytes.length; position++) {
    for (let bit = 0; bit < 8; bit++) {
      const damaged = Buffer.from(bytes);
      damaged[position] ^= 1 << bit;
      const result = decodeRecord(damaged, 0);
      assert.equal(result.kind, "corrupt", `byte ${position} bit ${bit}`);
    }
  }
});

test("a length beyond the maximum is corrupt, not a record still to come", () => {
  const header = Buffer.alloc(recordHeaderBytes);
  header.writeUInt32LE(recordPayloadBytesMax + 1, 0);
  const result = decodeRecord(header, 0);
  assert.equal(result.kind, "corrupt");
  assert.throws(() => encodeRecord({ type: 1, payload: new Uint8Array(recordPayloadBytesMax + 1) }), /exceeds/);
});

test("a shortened length field makes the record corrupt", () => {
  const bytes = encodeRecord(samples[0]!);
  const damaged = Buffer.from(bytes);
  damaged.writeUInt32LE(bytes.readUInt32LE(0) - 1, 0);
  assert.equal(decodeRecord(damaged, 0).kind, "corrupt");
});
