import assert from "node:assert/strict";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { test } from "node:test";
import { KeyValueSchema } from "../../src/gen/mvccpb/kv_pb.js";
import { decodeKeyValue, encodeKeyValue, keyValueEncodedLength, type KeyValue } from "../../src/mvcc/key-value.js";
import { below, prng } from "../support/random.js";

function protobufBytes(kv: KeyValue): Uint8Array {
  return toBinary(
    KeyValueSchema,
    create(KeyValueSchema, {
      key: kv.key,
      createRevision: BigInt(kv.createRevision),
      modRevision: BigInt(kv.modRevision),
      version: BigInt(kv.version),
      value: kv.value,
      lease: kv.lease,
    }),
  );
}

function randomBytes(random: () => number, length: number): Uint8Array {
  return Uint8Array.from({ length }, () => below(random, 256));
}

/** A number of interesting magnitude: 0, around varint byte boundaries, or up to 2^53 - 1. */
function randomRevision(random: () => number): number {
  const choice = below(random, 6);
  if (choice === 0) return 0;
  if (choice === 1) return Number.MAX_SAFE_INTEGER - below(random, 3);
  const bits = [7, 14, 21, 28, 35, 42, 49][below(random, 7)]!;
  return Math.max(0, 2 ** bits - 2 + below(random, 4));
}

function randomLease(random: () => number): bigint {
  switch (below(random, 6)) {
    case 0:
      return 0n;
    case 1:
      return -1n - BigInt(below(random, 1000));
    case 2:
      return -(1n << 63n);
    case 3:
      return (1n << 63n) - 1n;
    default: {
      const high = BigInt(below(random, 2 ** 31));
      const low = BigInt(below(random, 2 ** 32));
      const value = (high << 32n) | low;
      return random() < 0.3 ? -value : value;
    }
  }
}

function randomKeyValue(random: () => number): KeyValue {
  const valueLength = [0, 0, 1, 5, 127, 128, 300, 20000][below(random, 8)]!;
  return {
    key: randomBytes(random, 1 + below(random, 200)),
    createRevision: randomRevision(random),
    modRevision: randomRevision(random),
    version: randomRevision(random),
    value: randomBytes(random, valueLength),
    lease: randomLease(random),
  };
}

test("encodeKeyValue produces exactly protobuf's bytes for random key-values", () => {
  const seed = 20261124;
  const random = prng(seed);
  for (let round = 0; round < 3000; round++) {
    const kv = randomKeyValue(random);
    const expected = Buffer.from(protobufBytes(kv));
    const actual = encodeKeyValue(kv);
    assert.equal(actual.toString("hex"), expected.toString("hex"), `seed ${seed} round ${round}: ${JSON.stringify({ ...kv, key: kv.key.length, value: kv.value.length, lease: String(kv.lease) })}`);
    assert.equal(keyValueEncodedLength(kv), expected.length);
  }
});

test("decodeKeyValue reads protobuf's bytes back to the same fields", () => {
  const random = prng(77);
  for (let round = 0; round < 2000; round++) {
    const kv = randomKeyValue(random);
    const decoded = decodeKeyValue(protobufBytes(kv));
    assert.deepEqual(Buffer.from(decoded.key), Buffer.from(kv.key));
    assert.deepEqual(Buffer.from(decoded.value), Buffer.from(kv.value));
    assert.equal(decoded.createRevision, kv.createRevision);
    assert.equal(decoded.modRevision, kv.modRevision);
    assert.equal(decoded.version, kv.version);
    assert.equal(decoded.lease, kv.lease);
    // And protobuf reads ours.
    const parsed = fromBinary(KeyValueSchema, encodeKeyValue(kv));
    assert.equal(parsed.lease, kv.lease);
    assert.equal(parsed.modRevision, BigInt(kv.modRevision));
  }
});

test("a negative lease id takes ten bytes, as int64 does in protobuf", () => {
  const kv: KeyValue = { key: Buffer.from("k"), createRevision: 2, modRevision: 2, version: 1, value: new Uint8Array(0), lease: -5n };
  const bytes = encodeKeyValue(kv);
  assert.equal(bytes.toString("hex"), "0a016b10021802200130fbffffffffffffffff01");
  assert.equal(decodeKeyValue(bytes).lease, -5n);
});

test("a tombstone record (key only) matches protobuf, and an empty value is left out", () => {
  const tombstone: KeyValue = { key: Buffer.from("foo"), createRevision: 0, modRevision: 0, version: 0, value: new Uint8Array(0), lease: 0n };
  assert.equal(encodeKeyValue(tombstone).toString("hex"), "0a03666f6f");
  assert.equal(encodeKeyValue(tombstone).toString("hex"), Buffer.from(protobufBytes(tombstone)).toString("hex"));
});

test("an all-default KeyValue (empty key) encodes to protobuf's zero bytes", () => {
  const empty: KeyValue = { key: new Uint8Array(0), createRevision: 0, modRevision: 0, version: 0, value: new Uint8Array(0), lease: 0n };
  assert.equal(encodeKeyValue(empty).toString("hex"), Buffer.from(protobufBytes(empty)).toString("hex"));
});

test("decodeKeyValue rejects unknown fields and truncated records", () => {
  const bytes = encodeKeyValue({ key: Buffer.from("key"), createRevision: 300, modRevision: 300, version: 1, value: Buffer.from("value"), lease: 0n });
  assert.throws(() => decodeKeyValue(Buffer.concat([bytes, Buffer.from([0x38, 0x01])])), /unexpected KeyValue tag/);
  assert.throws(() => decodeKeyValue(bytes.subarray(0, bytes.length - 2)), /overruns|truncated/);
  assert.throws(() => decodeKeyValue(Buffer.from([0x10, 0xac])), /truncated/);
});
