import { ScalarType, type DescField, type DescMessage } from "@bufbuild/protobuf";

/**
 * etcd decodes requests with gogo-protobuf's generated code, which differs
 * from protobuf-es at the edges of the wire format: a known field sent with
 * another wire type is an error there ("proto: wrong wireType = 3 for field
 * KeysOnly"), where protobuf-es would skip it as unknown; and an unknown
 * field is skipped by counting group starts and ends alone, where protobuf-es
 * refuses an end group whose field number does not match.
 *
 * `goCompatibleBytes` walks a request as gogo's code does, throwing its
 * errors, and returns bytes protobuf-es decodes to the same request: the
 * input itself, or, when an unknown field holds a group, the input without
 * its unknown fields (etcd never reads them).
 */
export function goCompatibleBytes(message: DescMessage, bytes: Uint8Array): Uint8Array {
  let kept: Uint8Array[] | undefined;
  let position = 0;
  let keptUpTo = 0;
  while (position < bytes.length) {
    const fieldStart = position;
    const { fieldNumber, wireType, afterTag, wide } = readTag(bytes, position);
    if (wireType === 4) throw new Error(`proto: ${message.name}: wiretype end group for non-group`);
    if (fieldNumber <= 0) throw new Error(`proto: ${message.name}: illegal tag ${fieldNumber} (wire type ${wireType})`);
    const field = message.fields.find((candidate) => candidate.number === fieldNumber);
    if (field === undefined) {
      position = fieldStart + skipField(bytes.subarray(fieldStart));
      // protobuf-es refuses what gogo skips here: a group, or a tag wider than 32 bits.
      if (wireType === 3 || wide) {
        kept ??= [];
        kept.push(bytes.subarray(keptUpTo, fieldStart));
        keptUpTo = position;
      }
      continue;
    }
    if (!wireTypeFits(field, wireType)) throw new Error(`proto: wrong wireType = ${wireType} for field ${goName(field)}`);
    position = fieldStart + skipField(bytes.subarray(fieldStart));
    const nested = nestedMessage(field);
    if (nested !== undefined) {
      const [length, valueStart] = readVarint(bytes, afterTag);
      const value = bytes.subarray(valueStart, valueStart + length);
      const compatible = goCompatibleBytes(nested, value);
      if (compatible !== value) {
        kept ??= [];
        kept.push(bytes.subarray(keptUpTo, afterTag), encodeVarint(compatible.length), compatible);
        keptUpTo = position;
      }
    }
  }
  if (kept === undefined) return bytes;
  kept.push(bytes.subarray(keptUpTo));
  return Buffer.concat(kept);
}

/**
 * A field's tag as gogo reads it: a varint of up to 64 bits whose field number
 * is `int32(wire >> 3)`, truncated as Go truncates; `wide` when it does not
 * fit the 32 bits protobuf-es allows.
 */
function readTag(bytes: Uint8Array, start: number): { fieldNumber: number; wireType: number; afterTag: number; wide: boolean } {
  const [tag, afterTag] = readVarint(bytes, start);
  if (tag <= 0xffff_ffff) return { fieldNumber: Math.floor(tag / 8), wireType: tag % 8, afterTag, wide: false };
  let wire = 0n;
  for (let position = afterTag - 1; position >= start; position--) wire = (wire << 7n) | BigInt(bytes[position]! & 0x7f);
  wire &= 0xffff_ffff_ffff_ffffn;
  return { fieldNumber: Number(BigInt.asIntN(32, wire >> 3n)), wireType: Number(wire & 7n), afterTag, wide: true };
}

/** The length of the field at the start of `bytes`, tag included, skipped as gogo's skip functions do. */
function skipField(bytes: Uint8Array): number {
  let position = 0;
  let depth = 0;
  while (position < bytes.length) {
    const { wireType, afterTag } = readTag(bytes, position);
    position = afterTag;
    switch (wireType) {
      case 0:
        position = readVarint(bytes, position)[1];
        break;
      case 1:
        position += 8;
        break;
      case 2: {
        const [length, afterLength] = readVarint(bytes, position);
        if (length > bytes.length) throw new Error("unexpected EOF");
        position = afterLength + length;
        break;
      }
      case 3:
        depth++;
        break;
      case 4:
        if (depth === 0) throw new Error("proto: unexpected end of group");
        depth--;
        break;
      case 5:
        position += 4;
        break;
      default:
        throw new Error(`proto: illegal wireType ${wireType}`);
    }
    if (depth === 0) {
      if (position > bytes.length) throw new Error("unexpected EOF");
      return position;
    }
  }
  throw new Error("unexpected EOF");
}

/** A varint at `start` and the position after it; values past 2^53 (never a valid tag or length) read as Infinity. */
function readVarint(bytes: Uint8Array, start: number): [number, number] {
  let value = 0;
  let scale = 1;
  for (let position = start; position < start + 10; position++) {
    if (position >= bytes.length) throw new Error("unexpected EOF");
    const byte = bytes[position]!;
    value += (byte & 0x7f) * scale;
    scale *= 128;
    if (byte < 0x80) return [value > Number.MAX_SAFE_INTEGER ? Infinity : value, position + 1];
  }
  throw new Error("proto: integer overflow");
}

function encodeVarint(value: number): Uint8Array {
  const out: number[] = [];
  while (value >= 0x80) {
    out.push((value & 0x7f) | 0x80);
    value = Math.floor(value / 128);
  }
  out.push(value);
  return Uint8Array.from(out);
}

function nestedMessage(field: DescField): DescMessage | undefined {
  if (field.fieldKind === "message") return field.message;
  if (field.fieldKind === "list" && field.listKind === "message") return field.message;
  return undefined;
}

function wireTypeFits(field: DescField, wireType: number): boolean {
  switch (field.fieldKind) {
    case "message":
    case "map":
      return wireType === 2;
    case "list":
      if (field.listKind === "message") return wireType === 2;
      return wireType === 2 || wireType === scalarWireType(field.listKind === "enum" ? ScalarType.INT32 : field.scalar);
    case "enum":
      return wireType === 0;
    case "scalar":
      return wireType === scalarWireType(field.scalar);
  }
}

function scalarWireType(scalar: ScalarType): number {
  switch (scalar) {
    case ScalarType.STRING:
    case ScalarType.BYTES:
      return 2;
    case ScalarType.DOUBLE:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return 1;
    case ScalarType.FLOAT:
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
      return 5;
    default:
      return 0;
  }
}

/** The Go field name protoc-gen-gogo gives a proto field: `keys_only` → `KeysOnly`. */
function goName(field: DescField): string {
  return field.name
    .split("_")
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join("");
}
