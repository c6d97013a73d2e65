import { createHash } from "node:crypto";
import { closeSync, existsSync, openSync, readSync, statSync } from "node:fs";
import { crc32c } from "../pkg/crc32c.js";
import { BboltReader } from "./bbolt-reader.js";

/** Bytes of the sha256 trailer etcd appends to a snapshot file. */
export const sha256TrailerBytes = 32;

/** What `etcdctl snapshot status` reports of a snapshot file. */
export interface SnapshotStatus {
  /** CRC-32C over every bucket's name, then each of its keys and values. */
  hash: number;
  /** The main revision of the last record of the `key` bucket. */
  revision: number;
  /** Records in all buckets. */
  totalKey: number;
  /** The database's pages, as bbolt counts its size. */
  totalSize: number;
}

export class SnapshotFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SnapshotFileError";
  }
}

/** Reads a snapshot file as `etcdctl snapshot status` does. */
export function snapshotStatus(path: string): SnapshotStatus {
  if (!existsSync(path)) throw new SnapshotFileError(`stat ${path}: no such file or directory`);
  const reader = new BboltReader(path);
  try {
    let hash = 0;
    let revision = 0;
    let totalKey = 0;
    for (const bucket of reader.bucketNames()) {
      hash = crc32c(Buffer.from(bucket), hash);
      for (const { key, value } of reader.records(bucket)) {
        hash = crc32c(value, crc32c(key, hash));
        if (bucket === "key") revision = Number(key.readBigUInt64BE(0));
        totalKey++;
      }
    }
    return { hash, revision, totalKey, totalSize: reader.sizeBytes };
  } finally {
    reader.close();
  }
}

/**
 * Checks the sha256 trailer as etcd's restore does: a file whose size is 32
 * bytes past a multiple of 512 carries one, and it must match; a file without
 * one is taken only with `skipHashCheck` (as a backend file copied out of a
 * data dir). Returns the bytes of the database proper.
 */
export function checkSnapshotHash(path: string, skipHashCheck: boolean): number {
  const size = statSync(path).size;
  const hasHash = size % 512 === sha256TrailerBytes;
  if (!hasHash) {
    if (!skipHashCheck) throw new SnapshotFileError("snapshot missing hash but --skip-hash-check=false");
    return size;
  }
  const databaseBytes = size - sha256TrailerBytes;
  if (skipHashCheck) return databaseBytes;
  const digest = createHash("sha256");
  const fd = openSync(path, "r");
  try {
    const buffer = Buffer.alloc(1 << 20);
    for (let position = 0; position < databaseBytes; ) {
      const read = readSync(fd, buffer, 0, Math.min(buffer.length, databaseBytes - position), position);
      if (read === 0) throw new SnapshotFileError(`snapshot: short read at ${position}`);
      digest.update(buffer.subarray(0, read));
      position += read;
    }
    const trailer = Buffer.alloc(sha256TrailerBytes);
    readSync(fd, trailer, 0, sha256TrailerBytes, databaseBytes);
    const actual = digest.digest();
    if (!actual.equals(trailer)) throw new SnapshotFileError(`expected sha256 ${formatGoBytes(trailer)}, got ${formatGoBytes(actual)}`);
  } finally {
    closeSync(fd);
  }
  return databaseBytes;
}

/** A byte slice as Go's %v prints it: [1 2 3]. */
function formatGoBytes(bytes: Buffer): string {
  return `[${[...bytes].join(" ")}]`;
}
