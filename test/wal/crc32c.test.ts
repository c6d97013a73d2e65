import assert from "node:assert/strict";
import { test } from "node:test";
import { crc32c } from "../../src/pkg/crc32c.js";
import { prng } from "../support/random.js";

/** The textbook bit-at-a-time CRC-32C, against which the sliced table version is checked. */
function referenceCrc32c(bytes: Uint8Array, crc = 0): number {
  let value = ~crc >>> 0;
  for (const byte of bytes) {
    value ^= byte;
    for (let bit = 0; bit < 8; bit++) value = value & 1 ? (value >>> 1) ^ 0x82f63b78 : value >>> 1;
  }
  return ~value >>> 0;
}

test("crc32c matches the published check values", () => {
  assert.equal(crc32c(Buffer.from("123456789")), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(0)), 0);
  // RFC 3720 (iSCSI) appendix B.4 test vectors.
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, index) => index)), 0x46dd794e);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, index) => 31 - index)), 0x113fdb5c);
  assert.equal(crc32c(Buffer.from("The quick brown fox jumps over the lazy dog")), 0x22620404);
});

test("crc32c agrees with the bitwise reference for every length from 0 to 80 and random data", () => {
  const seed = 0x5eed_c3c;
  const random = prng(seed);
  for (let length = 0; length <= 80; length++) {
    for (let round = 0; round < 5; round++) {
      const bytes = Uint8Array.from({ length }, () => Math.floor(random() * 256));
      assert.equal(crc32c(bytes), referenceCrc32c(bytes), `seed ${seed}, length ${length}`);
    }
  }
  const large = Uint8Array.from({ length: 100_003 }, () => Math.floor(random() * 256));
  assert.equal(crc32c(large), referenceCrc32c(large));
});

test("crc32c continues across chunks, at every split point and at unaligned offsets", () => {
  const bytes = Buffer.from("a WAL record split anywhere must checksum the same as whole: 0123456789");
  const whole = crc32c(bytes);
  for (let split = 0; split <= bytes.length; split++) {
    assert.equal(crc32c(bytes.subarray(split), crc32c(bytes.subarray(0, split))), whole, `split at ${split}`);
  }
  // A view into a larger buffer (non-zero byteOffset) checksums only its own bytes.
  const padded = Buffer.concat([Buffer.from("xyz"), bytes, Buffer.from("tail")]);
  assert.equal(crc32c(padded.subarray(3, 3 + bytes.length)), whole);
});
