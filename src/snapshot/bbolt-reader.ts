import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { bbolt, readMetaPage, type MetaRecord } from "./bbolt-layout.js";

export class BboltFormatError extends Error {
  constructor(message: string) {
    super(`bbolt: ${message}`);
    this.name = "BboltFormatError";
  }
}

interface PageView {
  bytes: Buffer;
  flags: number;
  count: number;
}

/** Trees nested deeper than this are taken for a corrupt file (bbolt's trees of a few GB are 4 or 5 levels deep). */
const maxTreeDepth = 64;

/**
 * Reads a bbolt database file (etcd's backend or snapshot file) page by page
 * from disk, so that memory stays bounded whatever the file's size. Written
 * by bbolt or by tetcd's writer; inline buckets (bbolt's small buckets kept
 * inside their parent's leaf) are read too.
 */
export class BboltReader {
  readonly meta: MetaRecord & { pageSizeBytes: number };
  private readonly fd: number;
  /** Bytes of the file that belong to the database (a snapshot file's sha256 trailer is past them). */
  readonly fileBytes: number;

  constructor(path: string) {
    this.fd = openSync(path, "r");
    try {
      this.fileBytes = fstatSync(this.fd).size;
      this.meta = this.chooseMeta();
    } catch (error) {
      closeSync(this.fd);
      throw error;
    }
  }

  /** The valid meta page of the newest transaction, as bbolt chooses it. */
  private chooseMeta(): MetaRecord & { pageSizeBytes: number } {
    const first = readMetaPage(this.readAt(0, bbolt.pageSizeBytes));
    const pageSizeBytes = first?.pageSizeBytes ?? bbolt.pageSizeBytes;
    const second = this.fileBytes >= 2 * pageSizeBytes ? readMetaPage(this.readAt(pageSizeBytes, pageSizeBytes)) : undefined;
    const meta = first === undefined ? second : second === undefined ? first : second.transactionId > first.transactionId ? second : first;
    if (meta === undefined) throw new BboltFormatError("no valid meta page (not a bbolt file, or a corrupt one)");
    if (meta.highWaterPage * meta.pageSizeBytes > this.fileBytes) throw new BboltFormatError(`file of ${this.fileBytes} bytes is shorter than its ${meta.highWaterPage} pages`);
    return meta;
  }

  /** Size of the database as bbolt reports it: its pages, up to the high-water mark. */
  get sizeBytes(): number {
    return this.meta.highWaterPage * this.meta.pageSizeBytes;
  }

  close(): void {
    closeSync(this.fd);
  }

  /** The names of the top-level buckets, in order. */
  bucketNames(): string[] {
    const names: string[] = [];
    for (const element of this.elementsOfTree(this.pageTree(this.meta.rootPage), 0)) {
      if ((element.flags & bbolt.bucketLeafFlag) !== 0) names.push(element.key.toString());
    }
    return names;
  }

  /** The records of a top-level bucket in key order (nested buckets are not visited); nothing when it does not exist. */
  *records(bucket: string): Generator<{ key: Buffer; value: Buffer }> {
    for (const element of this.elementsOfTree(this.pageTree(this.meta.rootPage), 0)) {
      if ((element.flags & bbolt.bucketLeafFlag) === 0 || element.key.toString() !== bucket) continue;
      const rootPage = Number(element.value.readBigUInt64LE(0));
      // An inline bucket's page follows its header in the value.
      const tree = rootPage === 0 ? this.inlineTree(element.value.subarray(bbolt.bucketHeaderBytes)) : this.pageTree(rootPage);
      for (const record of this.elementsOfTree(tree, 0)) {
        if ((record.flags & bbolt.bucketLeafFlag) === 0) yield { key: record.key, value: record.value };
      }
    }
  }

  private pageTree(pageId: number): PageView {
    if (pageId < bbolt.firstDataPage - 1 || pageId >= this.meta.highWaterPage) throw new BboltFormatError(`page ${pageId} out of bounds`);
    const head = this.readAt(pageId * this.meta.pageSizeBytes, this.meta.pageSizeBytes);
    const overflow = head.readUInt32LE(12);
    const bytes = overflow === 0 ? head : this.readAt(pageId * this.meta.pageSizeBytes, (overflow + 1) * this.meta.pageSizeBytes);
    if (Number(bytes.readBigUInt64LE(0)) !== pageId) throw new BboltFormatError(`page ${pageId} says it is page ${bytes.readBigUInt64LE(0)}`);
    return { bytes, flags: bytes.readUInt16LE(8), count: bytes.readUInt16LE(10) };
  }

  private inlineTree(bytes: Buffer): PageView {
    return { bytes, flags: bytes.readUInt16LE(8), count: bytes.readUInt16LE(10) };
  }

  private *elementsOfTree(page: PageView, depth: number): Generator<{ flags: number; key: Buffer; value: Buffer }> {
    if (depth > maxTreeDepth) throw new BboltFormatError("tree too deep");
    if ((page.flags & bbolt.leafPageFlag) !== 0) {
      for (let index = 0; index < page.count; index++) {
        const offset = bbolt.pageHeaderBytes + index * bbolt.leafElementBytes;
        const keyStart = offset + page.bytes.readUInt32LE(offset + 4);
        const keyEnd = keyStart + page.bytes.readUInt32LE(offset + 8);
        const valueEnd = keyEnd + page.bytes.readUInt32LE(offset + 12);
        if (valueEnd > page.bytes.length) throw new BboltFormatError("leaf element past its page");
        yield { flags: page.bytes.readUInt32LE(offset), key: page.bytes.subarray(keyStart, keyEnd), value: page.bytes.subarray(keyEnd, valueEnd) };
      }
      return;
    }
    if ((page.flags & bbolt.branchPageFlag) === 0) throw new BboltFormatError(`page of type ${page.flags} in a tree`);
    for (let index = 0; index < page.count; index++) {
      const offset = bbolt.pageHeaderBytes + index * bbolt.branchElementBytes;
      yield* this.elementsOfTree(this.pageTree(Number(page.bytes.readBigUInt64LE(offset + 8))), depth + 1);
    }
  }

  private readAt(position: number, length: number): Buffer {
    const buffer = Buffer.alloc(length);
    const read = readSync(this.fd, buffer, 0, length, position);
    if (read !== length) throw new BboltFormatError(`short read at ${position}`);
    return buffer;
  }
}
