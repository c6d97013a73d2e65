/**
 * The on-disk layout of a bbolt database file, as etcd's snapshot files use
 * it. Every number is little-endian (bbolt writes its structs in the byte
 * order of the machines etcd runs on).
 *
 * A page starts with a 16-byte header: id (u64), flags (u16), count (u16),
 * overflow (u32, the pages that follow it as one). Pages 0 and 1 hold the two
 * meta records, then come the freelist page and the B+tree pages of the
 * buckets. Leaf elements are 16 bytes: flags (u32), pos (u32, from the
 * element to its key), key size (u32), value size (u32); branch elements:
 * pos (u32), key size (u32), child page id (u64). Keys and values follow the
 * elements. A bucket is a leaf element flagged as one whose value is the
 * bucket header: its root page id (u64) and sequence (u64).
 */
export const bbolt = {
  pageSizeBytes: 4096,
  pageHeaderBytes: 16,
  leafElementBytes: 16,
  branchElementBytes: 16,
  bucketHeaderBytes: 16,
  magic: 0xed0cdaed,
  version: 2,
  branchPageFlag: 0x01,
  leafPageFlag: 0x02,
  metaPageFlag: 0x04,
  freelistPageFlag: 0x10,
  bucketLeafFlag: 0x01,
  /** Bytes of the meta record covered by its checksum (every field before it). */
  metaChecksummedBytes: 56,
  /** Page ids of the fixed pages. */
  metaPages: [0, 1] as const,
  freelistPage: 2,
  firstDataPage: 3,
} as const;

/** Offsets of the meta record's fields, from the end of the page header. */
export const metaField = {
  magic: 0,
  version: 4,
  pageSize: 8,
  flags: 12,
  rootPage: 16,
  rootSequence: 24,
  freelistPage: 32,
  highWaterPage: 40,
  transactionId: 48,
  checksum: 56,
} as const;

const fnvOffsetBasis = 0xcbf29ce484222325n;
const fnvPrime = 0x100000001b3n;
const mask64 = (1n << 64n) - 1n;

/** FNV-1a, 64 bits: the checksum of bbolt's meta record. */
export function fnv64a(bytes: Uint8Array): bigint {
  let hash = fnvOffsetBasis;
  for (const byte of bytes) hash = ((hash ^ BigInt(byte)) * fnvPrime) & mask64;
  return hash;
}

export interface MetaRecord {
  rootPage: number;
  freelistPage: number;
  /** Pages in the file: the next page id bbolt would allocate. */
  highWaterPage: number;
  transactionId: number;
}

/** One meta page, its checksum computed. */
export function metaPage(pageId: number, meta: MetaRecord): Buffer {
  const page = Buffer.alloc(bbolt.pageSizeBytes);
  writePageHeader(page, pageId, bbolt.metaPageFlag, 0, 0);
  const record = page.subarray(bbolt.pageHeaderBytes);
  record.writeUInt32LE(bbolt.magic, metaField.magic);
  record.writeUInt32LE(bbolt.version, metaField.version);
  record.writeUInt32LE(bbolt.pageSizeBytes, metaField.pageSize);
  record.writeUInt32LE(0, metaField.flags);
  record.writeBigUInt64LE(BigInt(meta.rootPage), metaField.rootPage);
  record.writeBigUInt64LE(0n, metaField.rootSequence);
  record.writeBigUInt64LE(BigInt(meta.freelistPage), metaField.freelistPage);
  record.writeBigUInt64LE(BigInt(meta.highWaterPage), metaField.highWaterPage);
  record.writeBigUInt64LE(BigInt(meta.transactionId), metaField.transactionId);
  record.writeBigUInt64LE(fnv64a(record.subarray(0, bbolt.metaChecksummedBytes)), metaField.checksum);
  return page;
}

/** Reads a meta page; undefined when its magic, version or checksum is wrong. */
export function readMetaPage(page: Buffer): (MetaRecord & { pageSizeBytes: number }) | undefined {
  const record = page.subarray(bbolt.pageHeaderBytes);
  if (record.length < metaField.checksum + 8) return undefined;
  if (record.readUInt32LE(metaField.magic) !== bbolt.magic || record.readUInt32LE(metaField.version) !== bbolt.version) return undefined;
  if (record.readBigUInt64LE(metaField.checksum) !== fnv64a(record.subarray(0, bbolt.metaChecksummedBytes))) return undefined;
  return {
    pageSizeBytes: record.readUInt32LE(metaField.pageSize),
    rootPage: Number(record.readBigUInt64LE(metaField.rootPage)),
    freelistPage: Number(record.readBigUInt64LE(metaField.freelistPage)),
    highWaterPage: Number(record.readBigUInt64LE(metaField.highWaterPage)),
    transactionId: Number(record.readBigUInt64LE(metaField.transactionId)),
  };
}

export function writePageHeader(page: Buffer, pageId: number, flags: number, count: number, overflow: number): void {
  page.writeBigUInt64LE(BigInt(pageId), 0);
  page.writeUInt16LE(flags, 8);
  page.writeUInt16LE(count, 10);
  page.writeUInt32LE(overflow, 12);
}

/** An empty freelist page: the writer leaves no page unused. */
export function emptyFreelistPage(): Buffer {
  const page = Buffer.alloc(bbolt.pageSizeBytes);
  writePageHeader(page, bbolt.freelistPage, bbolt.freelistPageFlag, 0, 0);
  return page;
}

/** The value of a bucket's element in its parent: its header, pointing at its root page. */
export function bucketHeader(rootPage: number): Buffer {
  const header = Buffer.alloc(bbolt.bucketHeaderBytes);
  header.writeBigUInt64LE(BigInt(rootPage), 0);
  return header;
}
