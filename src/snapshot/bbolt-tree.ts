import { bbolt, writePageHeader } from "./bbolt-layout.js";

/** A page made by the tree builder: its id and, when materialized, its bytes (several pages when it overflows). */
export interface BuiltPage {
  pageId: number;
  pageCount: number;
  bytes: Buffer | undefined;
}

/** Hands out page ids in file order. */
export class PageAllocator {
  constructor(public nextPage: number = bbolt.firstDataPage) {}

  allocate(pageCount: number): number {
    const pageId = this.nextPage;
    this.nextPage += pageCount;
    return pageId;
  }
}

export interface LeafElement {
  key: Buffer;
  value: Buffer;
  flags: number;
}

interface BranchEntry {
  key: Buffer;
  pageId: number;
}

interface BranchLevel {
  entries: BranchEntry[];
  bytes: number;
  pagesEmitted: number;
}

/** Bytes a leaf page of these elements takes (before rounding up to pages). */
export function leafBytesOf(elements: readonly LeafElement[]): number {
  let bytes: number = bbolt.pageHeaderBytes;
  for (const element of elements) bytes += bbolt.leafElementBytes + element.key.length + element.value.length;
  return bytes;
}

/** A leaf page holding `elements`, over `pageCount` pages (an inline bucket's page is exactly as long as its contents). */
export function leafPage(pageId: number, elements: readonly LeafElement[], pageCount?: number): Buffer {
  const contentBytes = leafBytesOf(elements);
  const bytes = Buffer.alloc(pageCount === undefined ? contentBytes : pageCount * bbolt.pageSizeBytes);
  writePageHeader(bytes, pageId, bbolt.leafPageFlag, elements.length, pageCount === undefined ? 0 : pageCount - 1);
  let dataOffset = bbolt.pageHeaderBytes + elements.length * bbolt.leafElementBytes;
  for (const [index, element] of elements.entries()) {
    const elementOffset = bbolt.pageHeaderBytes + index * bbolt.leafElementBytes;
    bytes.writeUInt32LE(element.flags, elementOffset);
    bytes.writeUInt32LE(dataOffset - elementOffset, elementOffset + 4);
    bytes.writeUInt32LE(element.key.length, elementOffset + 8);
    bytes.writeUInt32LE(element.value.length, elementOffset + 12);
    element.key.copy(bytes, dataOffset);
    element.value.copy(bytes, dataOffset + element.key.length);
    dataOffset += element.key.length + element.value.length;
  }
  return bytes;
}

/** A leaf takes elements past a page's size until it has this many. */
const minElementsPerFullLeaf = 4;

function pagesFor(bytes: number): number {
  return Math.max(1, Math.ceil(bytes / bbolt.pageSizeBytes));
}

/**
 * Builds one bucket's B+tree bottom-up from records given in key order, as a
 * bulk load: leaves are filled up to a page and written as soon as they are
 * full, and each level of branch pages keeps only its page being filled, so
 * memory stays bounded by the tree's height whatever the bucket's size.
 * Leaves of a few large records span overflow pages.
 */
export class TreeBuilder {
  private leaf: LeafElement[] = [];
  private leafBytes: number = bbolt.pageHeaderBytes;
  private leafPagesEmitted = 0;
  private readonly levels: BranchLevel[] = [];
  private previousKey: Buffer | undefined;

  constructor(
    private readonly allocator: PageAllocator,
    private readonly emit: (page: BuiltPage) => void,
    /** False for a dry run that only lays pages out. */
    private readonly materialize: boolean,
  ) {}

  add(key: Buffer, value: Buffer, flags = 0): void {
    if (this.previousKey !== undefined && Buffer.compare(this.previousKey, key) >= 0) throw new Error("bbolt tree: keys out of order");
    this.previousKey = key;
    const elementBytes = bbolt.leafElementBytes + key.length + value.length;
    // As bbolt, which never splits a node of four elements or fewer: large
    // values share their overflow pages, instead of a page and a half each.
    if (this.leaf.length >= minElementsPerFullLeaf && this.leafBytes + elementBytes > bbolt.pageSizeBytes) this.flushLeaf();
    this.leaf.push({ key, value, flags });
    this.leafBytes += elementBytes;
  }

  /** Writes what is pending; returns the tree's root page id. */
  finish(): number {
    if (this.leafPagesEmitted === 0) return this.writeLeaf();
    this.flushLeaf();
    for (let depth = 0; ; depth++) {
      const level = this.levels[depth]!;
      const isTop = depth === this.levels.length - 1;
      if (isTop && level.pagesEmitted === 0) {
        if (level.entries.length < 2) throw new Error("bbolt tree: a branch root with fewer than two children");
        return this.writeBranch(level);
      }
      this.flushBranch(depth);
    }
  }

  private flushLeaf(): void {
    const firstKey = this.leaf[0]!.key;
    const pageId = this.writeLeaf();
    this.leafPagesEmitted++;
    this.addBranchEntry(0, { key: firstKey, pageId });
  }

  private writeLeaf(): number {
    const pageCount = pagesFor(this.leafBytes);
    const pageId = this.allocator.allocate(pageCount);
    const bytes = this.materialize ? leafPage(pageId, this.leaf, pageCount) : undefined;
    if (bytes !== undefined && leafBytesOf(this.leaf) !== this.leafBytes) throw new Error("bbolt tree: leaf size mismatch");
    this.emit({ pageId, pageCount, bytes });
    this.leaf = [];
    this.leafBytes = bbolt.pageHeaderBytes;
    return pageId;
  }

  private addBranchEntry(depth: number, entry: BranchEntry): void {
    this.levels[depth] ??= { entries: [], bytes: bbolt.pageHeaderBytes, pagesEmitted: 0 };
    const level = this.levels[depth]!;
    const entryBytes = bbolt.branchElementBytes + entry.key.length;
    if (level.entries.length > 0 && level.bytes + entryBytes > bbolt.pageSizeBytes) this.flushBranch(depth);
    level.entries.push(entry);
    level.bytes += entryBytes;
  }

  private flushBranch(depth: number): void {
    const level = this.levels[depth]!;
    const firstKey = level.entries[0]!.key;
    const pageId = this.writeBranch(level);
    level.pagesEmitted++;
    this.addBranchEntry(depth + 1, { key: firstKey, pageId });
  }

  private writeBranch(level: BranchLevel): number {
    const pageCount = pagesFor(level.bytes);
    const pageId = this.allocator.allocate(pageCount);
    let bytes: Buffer | undefined;
    if (this.materialize) {
      bytes = Buffer.alloc(pageCount * bbolt.pageSizeBytes);
      writePageHeader(bytes, pageId, bbolt.branchPageFlag, level.entries.length, pageCount - 1);
      let dataOffset = bbolt.pageHeaderBytes + level.entries.length * bbolt.branchElementBytes;
      for (const [index, entry] of level.entries.entries()) {
        const elementOffset = bbolt.pageHeaderBytes + index * bbolt.branchElementBytes;
        bytes.writeUInt32LE(dataOffset - elementOffset, elementOffset);
        bytes.writeUInt32LE(entry.key.length, elementOffset + 4);
        bytes.writeBigUInt64LE(BigInt(entry.pageId), elementOffset + 8);
        entry.key.copy(bytes, dataOffset);
        dataOffset += entry.key.length;
      }
    }
    this.emit({ pageId, pageCount, bytes });
    level.entries = [];
    level.bytes = bbolt.pageHeaderBytes;
    return pageId;
  }
}
