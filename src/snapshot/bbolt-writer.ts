import { setImmediate as nextTurn } from "node:timers/promises";
import { bbolt, bucketHeader, emptyFreelistPage, metaPage } from "./bbolt-layout.js";
import { leafBytesOf, leafPage, PageAllocator, TreeBuilder, type BuiltPage, type LeafElement } from "./bbolt-tree.js";

/** A bucket of the file: its name and its records in key order, which may be read twice (once to lay out, once to write). */
export interface BucketSource {
  name: string;
  records(): Iterable<{ key: Buffer; value: Buffer }>;
}

/** Records laid out or written between two yields to the event loop, so that a server goes on serving meanwhile. */
const recordsPerTurn = 2048;

/** bbolt keeps a bucket without nested buckets inline when its page would take at most a quarter of a page. */
const maxInlineBucketBytes = bbolt.pageSizeBytes / 4;

/** Where the buckets' trees end up: what the meta pages must say before any bucket page is written. */
interface Layout {
  rootPage: number;
  highWaterPage: number;
}

/**
 * Writes a bbolt database file (the format of etcd's backend and snapshot
 * files) from buckets of sorted records, in bounded chunks: a first pass lays
 * the pages out without making them, so the meta pages at the front and the
 * file's size are known, and a second pass makes the pages in file order.
 * No page is left unused, so the freelist is empty.
 */
export class BboltFileWriter {
  private constructor(
    private readonly buckets: readonly BucketSource[],
    private readonly layout: Layout,
    private readonly transactionId: number,
  ) {}

  /** Lays the file out; `buckets` must be sorted by name, each giving its records in key order. */
  static async plan(buckets: readonly BucketSource[], transactionId = 2): Promise<BboltFileWriter> {
    for (let index = 1; index < buckets.length; index++) {
      if (Buffer.compare(Buffer.from(buckets[index - 1]!.name), Buffer.from(buckets[index]!.name)) >= 0) throw new Error("bbolt file: buckets out of order");
    }
    const layout = { rootPage: 0, highWaterPage: 0 };
    for await (const page of pagesOf(buckets, false, layout)) void page;
    return new BboltFileWriter(buckets, layout, transactionId);
  }

  get sizeBytes(): number {
    return this.layout.highWaterPage * bbolt.pageSizeBytes;
  }

  /** The file's bytes in chunks of about `chunkBytes`, in order. */
  async *chunks(chunkBytes: number): AsyncGenerator<Buffer> {
    const meta = { rootPage: this.layout.rootPage, freelistPage: bbolt.freelistPage, highWaterPage: this.layout.highWaterPage };
    // As bbolt copies a database out: both meta pages alike, the second one transaction older.
    const pending: Buffer[] = [
      metaPage(0, { ...meta, transactionId: this.transactionId }),
      metaPage(1, { ...meta, transactionId: this.transactionId - 1 }),
      emptyFreelistPage(),
    ];
    let pendingBytes = 3 * bbolt.pageSizeBytes;
    let written = 0;
    let expectedPage = bbolt.firstDataPage;
    const laidOut = { rootPage: 0, highWaterPage: 0 };
    for await (const page of pagesOf(this.buckets, true, laidOut)) {
      if (page.pageId !== expectedPage) throw new Error(`bbolt file: page ${page.pageId} written where ${expectedPage} was laid out`);
      expectedPage += page.pageCount;
      pending.push(page.bytes!);
      pendingBytes += page.bytes!.length;
      while (pendingBytes >= chunkBytes) {
        const all = Buffer.concat(pending);
        yield all.subarray(0, chunkBytes);
        written += chunkBytes;
        pending.length = 0;
        pending.push(all.subarray(chunkBytes));
        pendingBytes = all.length - chunkBytes;
      }
    }
    // The records must not have changed between the passes: both read one point in time.
    if (laidOut.rootPage !== this.layout.rootPage || laidOut.highWaterPage !== this.layout.highWaterPage) throw new Error("bbolt file: the records changed between layout and write");
    if (pendingBytes > 0) yield Buffer.concat(pending);
    written += pendingBytes;
    if (written !== this.sizeBytes) throw new Error(`bbolt file: wrote ${written} bytes of ${this.sizeBytes}`);
  }
}

/** Every page after the freelist, in file order; sets the root page and page count in `layout` at the end. */
async function* pagesOf(buckets: readonly BucketSource[], materialize: boolean, layout: Layout): AsyncGenerator<BuiltPage> {
  const allocator = new PageAllocator();
  const built: BuiltPage[] = [];
  const emit = (page: BuiltPage): void => void built.push(page);
  const roots: Array<{ name: Buffer; header: Buffer }> = [];
  let records = 0;
  for (const bucket of buckets) {
    // As bbolt does, a bucket small enough is kept inline, in its parent's leaf.
    const small: LeafElement[] = [];
    let tree: TreeBuilder | undefined;
    for (const { key, value } of bucket.records()) {
      if (tree === undefined) {
        small.push({ key, value, flags: 0 });
        if (leafBytesOf(small) <= maxInlineBucketBytes) continue;
        tree = new TreeBuilder(allocator, emit, materialize);
        for (const element of small.splice(0)) tree.add(element.key, element.value);
      } else {
        tree.add(key, value);
      }
      if (built.length > 0) yield* built.splice(0);
      if (++records % recordsPerTurn === 0) await nextTurn();
    }
    const name = Buffer.from(bucket.name);
    if (tree === undefined) roots.push({ name, header: Buffer.concat([bucketHeader(0), leafPage(0, small)]) });
    else roots.push({ name, header: bucketHeader(tree.finish()) });
    yield* built.splice(0);
  }
  const rootTree = new TreeBuilder(allocator, emit, materialize);
  for (const { name, header } of roots) rootTree.add(name, header, bbolt.bucketLeafFlag);
  layout.rootPage = rootTree.finish();
  yield* built.splice(0);
  layout.highWaterPage = allocator.nextPage;
}
