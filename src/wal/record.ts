import { crc32c } from "../pkg/crc32c.js";

/**
 * A WAL record on disk:
 *
 *   offset 0  u32 LE  payload length
 *   offset 4  u32 LE  CRC-32C of the type byte and the payload
 *   offset 8  u8      record type
 *   offset 9  ...     payload
 */
export const recordHeaderBytes = 9;
/** No record is larger than this; a length beyond it is corruption, not a big record. */
export const recordPayloadBytesMax = 64 * 1024 * 1024;

export interface WalRecord {
  type: number;
  payload: Uint8Array;
}

export function encodeRecord(record: WalRecord): Buffer {
  if (record.payload.length > recordPayloadBytesMax) throw new Error(`WAL record of ${record.payload.length} bytes exceeds ${recordPayloadBytesMax}`);
  const out = Buffer.allocUnsafe(recordHeaderBytes + record.payload.length);
  out.writeUInt32LE(record.payload.length, 0);
  out[8] = record.type;
  out.set(record.payload, recordHeaderBytes);
  out.writeUInt32LE(crc32c(out.subarray(8)), 4);
  return out;
}

export type DecodeResult =
  | { kind: "record"; record: WalRecord; next: number }
  /** Not enough bytes for a whole record: the end of the data, possibly torn. */
  | { kind: "incomplete" }
  | { kind: "corrupt"; reason: string };

/** Decodes the record at `offset` of `bytes`. */
export function decodeRecord(bytes: Uint8Array, offset: number): DecodeResult {
  if (bytes.length - offset < recordHeaderBytes) return { kind: "incomplete" };
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, recordHeaderBytes);
  const length = view.getUint32(0, true);
  const checksum = view.getUint32(4, true);
  if (length > recordPayloadBytesMax) return { kind: "corrupt", reason: `record length ${length} exceeds the maximum` };
  const end = offset + recordHeaderBytes + length;
  if (end > bytes.length) return { kind: "incomplete" };
  const typeAndPayload = bytes.subarray(offset + 8, end);
  if (crc32c(typeAndPayload) !== checksum) return { kind: "corrupt", reason: "checksum mismatch" };
  return { kind: "record", record: { type: bytes[offset + 8]!, payload: bytes.subarray(offset + recordHeaderBytes, end) }, next: end };
}
