import { bucketNames, type Backend, type BucketName } from "../mvcc/backend.js";
import { ErrSnapshotTemporarilyUnavailable, MemoryStorage, type ConfState, type Snapshot } from "../raft/index.js";

/**
 * A raft snapshot's data is the whole backend: every record of every bucket,
 * as `[u8 bucket][u32 key length][key][u32 value length][value]`, taken in one
 * synchronous pass so that it is exactly the state at the applied index. The
 * member's own ids are left out: they belong to the receiver.
 */
const ownIdsKey = Buffer.from("member");

function isOwnIds(bucket: BucketName, key: Buffer): boolean {
  return bucket === "meta" && key.equals(ownIdsKey);
}

export function encodeBackendSnapshot(backend: Backend): Uint8Array {
  const parts: Buffer[] = [];
  bucketNames.forEach((bucket, position) => {
    for (const { key, value } of backend.records(bucket)) {
      if (isOwnIds(bucket, key)) continue;
      const header = Buffer.allocUnsafe(5);
      header.writeUInt8(position, 0);
      header.writeUInt32BE(key.length, 1);
      const valueLength = Buffer.allocUnsafe(4);
      valueLength.writeUInt32BE(value.length, 0);
      parts.push(header, key, valueLength, value);
    }
  });
  return Buffer.concat(parts);
}

export class SnapshotFormatError extends Error {
  constructor(offset: number) {
    super(`snapshot: malformed backend record at offset ${offset}`);
    this.name = "SnapshotFormatError";
  }
}

/** Replaces every record of the backend (but the member's ids) with the snapshot's; inside a backend write. */
export function installBackendSnapshot(backend: Backend, data: Uint8Array): void {
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const records: Array<{ bucket: BucketName; key: Buffer; value: Buffer }> = [];
  for (let offset = 0; offset < bytes.length; ) {
    if (offset + 5 > bytes.length) throw new SnapshotFormatError(offset);
    const bucket = bucketNames[bytes.readUInt8(offset)];
    const keyLength = bytes.readUInt32BE(offset + 1);
    const keyEnd = offset + 5 + keyLength;
    if (bucket === undefined || keyEnd + 4 > bytes.length) throw new SnapshotFormatError(offset);
    const valueEnd = keyEnd + 4 + bytes.readUInt32BE(keyEnd);
    if (valueEnd > bytes.length) throw new SnapshotFormatError(offset);
    records.push({ bucket, key: bytes.subarray(offset + 5, keyEnd), value: bytes.subarray(keyEnd + 4, valueEnd) });
    offset = valueEnd;
  }
  for (const bucket of bucketNames) {
    for (const { key } of backend.records(bucket)) if (!isOwnIds(bucket, key)) backend.delete(bucket, key);
  }
  for (const { bucket, key, value } of records) backend.put(bucket, Buffer.from(key), value);
}

/**
 * The raft log in memory, whose snapshot is made when raft asks for one (to
 * send to a follower that needs compacted entries): the backend at the applied
 * index, with the configuration raft has applied.
 */
export class ServerRaftStorage extends MemoryStorage {
  private source: (() => { index: number; confState: ConfState; data: Uint8Array }) | undefined;

  /** Sets what snapshots are made of, once the server that applies entries exists. */
  setSnapshotSource(source: () => { index: number; confState: ConfState; data: Uint8Array }): void {
    this.source = source;
  }

  override snapshot(): Snapshot {
    if (this.source === undefined) throw ErrSnapshotTemporarilyUnavailable;
    const { index, confState, data } = this.source();
    return { data, metadata: { index, term: this.term(index), confState } };
  }

  /** The snapshot this storage started from or last installed, without data. */
  storedSnapshot(): Snapshot {
    return super.snapshot();
  }
}
