/**
 * The stored form of a key at one revision: etcd's `mvccpb.KeyValue`, encoded by
 * hand so that the bytes are exactly those etcd writes (fields in order, zero
 * values left out). Records are stored and hashed in this encoding, and range
 * responses can carry them without decoding.
 */
export interface KeyValue {
  key: Uint8Array;
  createRevision: number;
  modRevision: number;
  version: number;
  value: Uint8Array;
  lease: bigint;
}

const emptyBytes = new Uint8Array(0);

export function encodeKeyValue(kv: KeyValue): Buffer {
  const length = keyValueEncodedLength(kv);
  const out = Buffer.allocUnsafe(length);
  let offset = kv.key.length !== 0 ? writeBytesField(out, 0, 0x0a, kv.key) : 0;
  if (kv.createRevision !== 0) offset = writeVarintField(out, offset, 0x10, kv.createRevision);
  if (kv.modRevision !== 0) offset = writeVarintField(out, offset, 0x18, kv.modRevision);
  if (kv.version !== 0) offset = writeVarintField(out, offset, 0x20, kv.version);
  if (kv.value.length !== 0) offset = writeBytesField(out, offset, 0x2a, kv.value);
  if (kv.lease !== 0n) {
    out[offset++] = 0x30;
    offset = writeBigVarint(out, offset, kv.lease);
  }
  if (offset !== length) throw new Error("KeyValue encoded length mismatch");
  return out;
}

export function keyValueEncodedLength(kv: KeyValue): number {
  let length = kv.key.length !== 0 ? 1 + varintLength(kv.key.length) + kv.key.length : 0;
  if (kv.createRevision !== 0) length += 1 + varintLength(kv.createRevision);
  if (kv.modRevision !== 0) length += 1 + varintLength(kv.modRevision);
  if (kv.version !== 0) length += 1 + varintLength(kv.version);
  if (kv.value.length !== 0) length += 1 + varintLength(kv.value.length) + kv.value.length;
  if (kv.lease !== 0n) length += 1 + bigVarintLength(kv.lease);
  return length;
}

export function decodeKeyValue(bytes: Uint8Array): KeyValue {
  const kv: KeyValue = { key: emptyBytes, createRevision: 0, modRevision: 0, version: 0, value: emptyBytes, lease: 0n };
  let offset = 0;
  while (offset < bytes.length) {
    const tag = bytes[offset++]!;
    if (tag === 0x0a || tag === 0x2a) {
      const [length, next] = readVarint(bytes, offset);
      const field = bytes.subarray(next, next + length);
      if (tag === 0x0a) kv.key = field;
      else kv.value = field;
      offset = next + length;
    } else if (tag === 0x30) {
      const [lease, next] = readBigVarint(bytes, offset);
      kv.lease = lease;
      offset = next;
    } else {
      const [value, next] = readVarint(bytes, offset);
      if (tag === 0x10) kv.createRevision = value;
      else if (tag === 0x18) kv.modRevision = value;
      else if (tag === 0x20) kv.version = value;
      else throw new Error(`unexpected KeyValue tag ${tag}`);
      offset = next;
    }
  }
  if (offset !== bytes.length) throw new Error("KeyValue record overruns its bytes");
  return kv;
}

function varintLength(value: number): number {
  let length = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    length++;
  }
  return length;
}

function writeVarint(out: Uint8Array, offset: number, value: number): number {
  while (value >= 0x80) {
    out[offset++] = (value % 128) | 0x80;
    value = Math.floor(value / 128);
  }
  out[offset++] = value;
  return offset;
}

function writeVarintField(out: Uint8Array, offset: number, tag: number, value: number): number {
  out[offset++] = tag;
  return writeVarint(out, offset, value);
}

function writeBytesField(out: Buffer, offset: number, tag: number, bytes: Uint8Array): number {
  out[offset++] = tag;
  offset = writeVarint(out, offset, bytes.length);
  out.set(bytes, offset);
  return offset + bytes.length;
}

/** int64 as protobuf writes it: two's complement, so negatives take 10 bytes. */
function bigVarintLength(value: bigint): number {
  let unsigned = BigInt.asUintN(64, value);
  let length = 1;
  while (unsigned >= 0x80n) {
    unsigned >>= 7n;
    length++;
  }
  return length;
}

function writeBigVarint(out: Uint8Array, offset: number, value: bigint): number {
  let unsigned = BigInt.asUintN(64, value);
  while (unsigned >= 0x80n) {
    out[offset++] = Number(unsigned & 0x7fn) | 0x80;
    unsigned >>= 7n;
  }
  out[offset++] = Number(unsigned);
  return offset;
}

function readVarint(bytes: Uint8Array, offset: number): [number, number] {
  let value = 0;
  let scale = 1;
  for (;;) {
    if (offset >= bytes.length) throw new Error("truncated varint in KeyValue record");
    const byte = bytes[offset++]!;
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return [value, offset];
    scale *= 128;
  }
}

function readBigVarint(bytes: Uint8Array, offset: number): [bigint, number] {
  let value = 0n;
  let shift = 0n;
  for (;;) {
    if (offset >= bytes.length) throw new Error("truncated varint in KeyValue record");
    const byte = bytes[offset++]!;
    value |= BigInt(byte & 0x7f) << shift;
    if (byte < 0x80) return [BigInt.asIntN(64, value), offset];
    shift += 7n;
  }
}
