import type { WatchableStore, WatcherResponse, WatchSink, WatchStream } from "../mvcc/watchable-store.js";

/** The message of the error a watch ends with when the revisions it needs were compacted (clientv3's ErrCompacted). */
export const compactedMessage = "mvcc: required revision has been compacted";

/** Responses held for the reader before the store is told the stream is full. */
const queuedResponsesMax = 256;

/** Why a wait ended early: the caller gave up, or the server is closing. */
export class WaitAborted extends Error {
  constructor() {
    super("context canceled");
    this.name = "WaitAborted";
  }
}

/**
 * A watch on one key or a key range inside the member, read one response at a
 * time: what a clientv3 watch channel is to etcd's concurrency recipes.
 * A response with `compactRevision` set ends it with `compactedMessage`.
 */
export class KeyWatch implements WatchSink {
  private readonly stream: WatchStream;
  private readonly queue: WatcherResponse[] = [];
  private waiting: { resolve: (response: WatcherResponse) => void; reject: (error: Error) => void } | undefined;
  private closed = false;
  private readonly onAbort = () => this.fail(new WaitAborted());

  constructor(
    private readonly store: WatchableStore,
    range: { key: string; end?: string; startRevision: number },
    private readonly signal: AbortSignal,
  ) {
    this.stream = store.newStream(this);
    this.stream.watch({ id: 0, key: range.key, end: range.end, startRevision: range.startRevision, filters: { noPut: false, noDelete: false }, prevKv: false });
    signal.addEventListener("abort", this.onAbort, { once: true });
  }

  /** The next response with events (progress responses are skipped). */
  async next(): Promise<WatcherResponse> {
    for (;;) {
      if (this.signal.aborted || this.closed) throw new WaitAborted();
      const response = this.queue.shift() ?? (await new Promise<WatcherResponse>((resolve, reject) => (this.waiting = { resolve, reject })));
      if (this.stream.victims.size > 0 && !this.full()) this.stream.resume();
      if (response.compactRevision !== 0) {
        this.close();
        throw new Error(compactedMessage);
      }
      if (response.events.length > 0) return response;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.signal.removeEventListener("abort", this.onAbort);
    this.store.closeStream(this.stream);
  }

  offer(response: WatcherResponse, required: boolean): boolean {
    if (this.closed) return true;
    if (!required && this.full()) return false;
    const waiting = this.waiting;
    this.waiting = undefined;
    if (waiting !== undefined) waiting.resolve(response);
    else this.queue.push(response);
    return true;
  }

  full(): boolean {
    return this.queue.length >= queuedResponsesMax;
  }

  synced(): void {}

  private fail(error: Error): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    this.close();
    waiting?.reject(error);
  }
}
