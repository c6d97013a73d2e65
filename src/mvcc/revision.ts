/**
 * A revision names one change to the store: `main` is the store revision of the
 * transaction, `sub` the change's position inside that transaction.
 *
 * On disk a revision is the key of its record in the `key` bucket: 8 bytes of
 * `main` big-endian, `_`, 8 bytes of `sub` big-endian, so that byte order is
 * revision order. A tombstone (the record of a delete) has a trailing `t`.
 */
export interface Revision {
  readonly main: number;
  readonly sub: number;
}

export const revisionBytesLength = 17;
export const markedRevisionBytesLength = 18;
const tombstoneMark = 0x74; // 't'
const separator = 0x5f; // '_'

export function compareRevisions(a: Revision, b: Revision): number {
  if (a.main !== b.main) return a.main < b.main ? -1 : 1;
  if (a.sub !== b.sub) return a.sub < b.sub ? -1 : 1;
  return 0;
}

export function revisionToBytes(revision: Revision, tombstone = false): Buffer {
  const bytes = Buffer.allocUnsafe(tombstone ? markedRevisionBytesLength : revisionBytesLength);
  writeUint64(bytes, 0, revision.main);
  bytes[8] = separator;
  writeUint64(bytes, 9, revision.sub);
  if (tombstone) bytes[17] = tombstoneMark;
  return bytes;
}

export function bytesToRevision(bytes: Uint8Array): Revision {
  if (bytes.length < revisionBytesLength) throw new Error(`revision key of ${bytes.length} bytes`);
  return { main: readUint64(bytes, 0), sub: readUint64(bytes, 9) };
}

export function isTombstoneKey(bytes: Uint8Array): boolean {
  return bytes.length === markedRevisionBytesLength && bytes[17] === tombstoneMark;
}

/** A key that sorts before every revision with `main`: the lower bound of a scan. */
export function mainRevisionPrefix(main: number): Buffer {
  const bytes = Buffer.alloc(8);
  writeUint64(bytes, 0, main);
  return bytes;
}

function writeUint64(bytes: Buffer, offset: number, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`revision part ${value} out of range`);
  bytes.writeUInt32BE(Math.floor(value / 0x1_0000_0000), offset);
  bytes.writeUInt32BE(value % 0x1_0000_0000, offset + 4);
}

function readUint64(bytes: Uint8Array, offset: number): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const high = view.getUint32(offset);
  const low = view.getUint32(offset + 4);
  const value = high * 0x1_0000_0000 + low;
  if (!Number.isSafeInteger(value)) throw new Error("revision beyond 2^53");
  return value;
}
