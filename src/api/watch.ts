import { create, toBinary } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import {
  ResponseHeaderSchema,
  Watch,
  WatchCreateRequest_FilterType as FilterType,
  type WatchCreateRequest,
  type WatchRequest,
} from "../gen/etcdserverpb/rpc_pb.js";
import { keyToString, rangeEndToString } from "../mvcc/keys.js";
import { watchLimits } from "../mvcc/watch/limits.js";
import { encodeEvent, encodeResponse, eventFieldBytes, responseOverheadBytes, type EncodedResponseFields } from "../mvcc/watch/wire.js";
import { authInfoOf } from "./auth-info.js";
import { EtcdError, ErrPermissionDenied } from "../server/errors.js";
import { WatchableStore, WatchError, type WatcherResponse, type WatchSink, type WatchStream } from "../mvcc/watchable-store.js";
import type { EtcdServer } from "../server/member.js";
import { serviceDefinition } from "./grpc.js";

/** The watch id of responses that belong to no watcher (a failed create, a stream-wide progress response). */
const noWatchId = -1;
/** The cancel reason etcd gives a watch its user may not read: the gRPC status, as Go prints it. */
const watchPermissionDenied = `rpc error: code = PermissionDenied desc = ${ErrPermissionDenied.message}`;

/** Watch responses may exceed --max-request-bytes by this much before etcd fragments them. */
const fragmentOverheadBytes = 512 * 1024;

type WatchCall = grpc.ServerDuplexStream<WatchRequest, Buffer>;

/**
 * The Watch service definition: requests decoded as usual, responses written
 * as the bytes the sessions encode (see mvcc/watch/wire.ts), so that an event
 * is encoded once for all its watchers.
 */
export function watchServiceDefinition(): grpc.ServiceDefinition {
  const definition = serviceDefinition(Watch);
  const watch = definition["watch"]!;
  return { ...definition, watch: { ...watch, responseSerialize: (bytes: Buffer) => bytes } };
}

/**
 * etcd's Watch service: one watchable store for the member, one session per
 * client stream. `close` ends every stream, so that the server can shut down.
 */
export class WatchHub {
  readonly store: WatchableStore;
  private readonly sessions = new Set<WatchSession>();
  private headerCache: { revision: number; term: number; bytes: Uint8Array } | undefined;

  constructor(private readonly server: EtcdServer) {
    this.store = new WatchableStore(server.store);
  }

  service(): grpc.UntypedServiceImplementation {
    return {
      watch: (call: WatchCall) => {
        const session = new WatchSession(this.server, this, call, () => this.sessions.delete(session));
        this.sessions.add(session);
      },
    };
  }

  /** The encoded response header at `revision`, shared by the responses of that revision. */
  header(revision: number): Uint8Array {
    const term = this.server.term;
    if (this.headerCache?.revision !== revision || this.headerCache.term !== term) {
      const header = create(ResponseHeaderSchema, { clusterId: this.server.clusterId, memberId: this.server.memberId, raftTerm: BigInt(term), revision: BigInt(revision) });
      this.headerCache = { revision, term, bytes: toBinary(ResponseHeaderSchema, header) };
    }
    return this.headerCache.bytes;
  }

  close(): void {
    for (const session of [...this.sessions]) session.end();
    this.store.close();
  }
}

/** A response waiting for the gRPC stream to take it. */
type QueuedResponse = Buffer;

/**
 * One client stream: turns requests into watchers, and sends responses in the
 * order the store offers them. Responses wait in a queue bounded by
 * `streamBufferBytesMax` while gRPC reports backpressure; past it the store
 * makes victims of the stream's watchers instead of waiting.
 */
class WatchSession implements WatchSink {
  private readonly stream: WatchStream;
  private queue: QueuedResponse[] = [];
  /** Index of the first response of `queue` not yet written. */
  private queueHead = 0;
  private queuedBytes = 0;
  private writable = true;
  private ended = false;
  /** Watchers that asked for progress notifications: true when due one (no events since the last tick). */
  private readonly progressDue = new Map<number, boolean>();
  private readonly fragmenting = new Set<number>();
  private progressPending = false;
  private readonly progressTimer: NodeJS.Timeout;

  private readonly store: WatchableStore;
  private handling: Promise<void> = Promise.resolve();

  constructor(
    private readonly server: EtcdServer,
    private readonly hub: WatchHub,
    private readonly call: WatchCall,
    private readonly onEnd: () => void,
  ) {
    this.store = hub.store;
    this.stream = this.store.newStream(this);
    // Requests are handled in order; a create may wait for its user's token to be checked.
    call.on("data", (request: WatchRequest) => {
      this.handling = this.handling.then(() => this.handle(request));
    });
    call.on("drain", () => {
      this.writable = true;
      this.pump();
    });
    call.on("error", () => this.end());
    call.on("cancelled", () => this.end());
    call.on("close", () => this.end());
    this.progressTimer = setInterval(() => this.tickProgress(), server.config.watchProgressNotifyIntervalMs);
    this.progressTimer.unref();
  }

  offer(response: WatcherResponse, required: boolean): boolean {
    if (this.ended) return true;
    if (!required && this.full()) return false;
    if (response.events.length > 0 && this.progressDue.has(response.watchId)) this.progressDue.set(response.watchId, false);
    const fields: EncodedResponseFields = {
      header: this.hub.header(response.revision),
      watchId: response.watchId,
      canceled: response.compactRevision !== 0,
      compactRevision: response.compactRevision,
      events: response.events.map(encodeEvent),
    };
    if (this.fragmenting.has(response.watchId)) {
      for (const fragment of fragments(fields, this.server.config.maxRequestBytes + fragmentOverheadBytes)) this.enqueue(encodeResponse(fragment));
    } else {
      this.enqueue(encodeResponse(fields));
    }
    return true;
  }

  full(): boolean {
    return this.queuedBytes >= watchLimits.streamBufferBytesMax || this.queue.length - this.queueHead >= watchLimits.streamBufferResponsesMax;
  }

  synced(): void {
    if (!this.progressPending) return;
    this.progressPending = false;
    this.sendStreamProgress();
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.progressTimer);
    this.store.closeStream(this.stream);
    this.queue = [];
    this.queueHead = 0;
    this.queuedBytes = 0;
    if (!this.call.destroyed && !this.call.writableEnded) this.call.end();
    this.onEnd();
  }

  private async handle(request: WatchRequest): Promise<void> {
    if (this.ended) return;
    const union = request.requestUnion;
    if (union.case === "createRequest") await this.create(union.value);
    else if (union.case === "cancelRequest") this.cancel(Number(union.value.watchId));
    else if (union.case === "progressRequest") this.requestProgress();
  }

  private async create(request: WatchCreateRequest): Promise<void> {
    const permitted = await this.permitted(request);
    if (this.ended) return;
    if (!permitted) {
      this.control({ watchId: Number(request.watchId), created: true, canceled: true, cancelReason: watchPermissionDenied });
      return;
    }
    const key = request.key.length === 0 ? "\0" : keyToString(request.key);
    let id: number;
    try {
      id = this.stream.watch({
        id: Number(request.watchId),
        key,
        end: rangeEndToString(request.rangeEnd),
        startRevision: Number(request.startRevision),
        filters: { noPut: request.filters.includes(FilterType.NOPUT), noDelete: request.filters.includes(FilterType.NODELETE) },
        prevKv: request.prevKv,
      });
    } catch (error) {
      if (!(error instanceof WatchError)) throw error;
      this.control({ watchId: noWatchId, created: true, canceled: true, cancelReason: error.message });
      return;
    }
    // An id can come back (chosen by the client) after its watcher was canceled by a compaction.
    this.progressDue.delete(id);
    this.fragmenting.delete(id);
    if (request.progressNotify) this.progressDue.set(id, true);
    if (request.fragment) this.fragmenting.add(id);
    this.control({ watchId: id, created: true });
  }

  private cancel(id: number): void {
    if (!this.stream.cancel(id)) return;
    this.progressDue.delete(id);
    this.fragmenting.delete(id);
    this.control({ watchId: id, canceled: true });
  }

  /** A stream-wide progress response, sent once every watcher of the stream is synced. */
  private requestProgress(): void {
    if (this.stream.allSynced()) this.sendStreamProgress();
    else this.progressPending = true;
  }

  private sendStreamProgress(): void {
    this.control({ watchId: noWatchId });
  }

  /** Every interval, a progress notification to each watcher that asked and had no events since the last. */
  private tickProgress(): void {
    for (const [id, due] of this.progressDue) {
      if (due) this.stream.requestProgress(id);
      this.progressDue.set(id, true);
    }
  }

  /** etcd's isWatchPermitted: read permission on the range, for the stream's user (token or certificate). */
  private async permitted(request: WatchCreateRequest): Promise<boolean> {
    if (!this.server.authStore.isEnabled) return true;
    try {
      this.server.authStore.checkKeys(await authInfoOf(this.server, this.call), "read", request.key, request.rangeEnd);
      return true;
    } catch (error) {
      if (error instanceof EtcdError) return false;
      throw error;
    }
  }

  private control(fields: { watchId: number; created?: boolean; canceled?: boolean; cancelReason?: string }): void {
    if (this.ended) return;
    this.enqueue(encodeResponse({ header: this.hub.header(this.store.currentRevision), events: [], ...fields }));
  }

  private enqueue(bytes: Buffer): void {
    this.queue.push(bytes);
    this.queuedBytes += bytes.length;
    this.pump();
  }

  /** Writes to gRPC; a stream that cannot take writes any more ends the session (never the write path that offered). */
  private write(bytes: Buffer): boolean {
    try {
      return this.call.write(bytes);
    } catch {
      queueMicrotask(() => this.end());
      return false;
    }
  }

  private pump(): void {
    const wasFull = this.full();
    while (this.writable && this.queueHead < this.queue.length && !this.ended) {
      const bytes = this.queue[this.queueHead++]!;
      this.queuedBytes -= bytes.length;
      this.writable = this.write(bytes);
    }
    if (this.queueHead === this.queue.length) {
      this.queue = [];
      this.queueHead = 0;
    } else if (this.queueHead > watchLimits.queueCompactionEntries) {
      this.queue = this.queue.slice(this.queueHead);
      this.queueHead = 0;
    }
    if (wasFull && !this.full()) this.stream.resume();
    else if (this.writable && this.stream.victims.size > 0) this.stream.resume();
  }
}

/**
 * Splits a response too large for one message into fragments of fewer than
 * `maxBytes` each (at least one event each), as etcd does for a watcher that
 * asked for fragments: every fragment but the last has `fragment` set.
 */
export function fragments(fields: EncodedResponseFields, maxBytes: number): EncodedResponseFields[] {
  const overhead = responseOverheadBytes({ ...fields, fragment: true });
  let total = overhead;
  for (const event of fields.events) total += eventFieldBytes(event);
  if (total < maxBytes || fields.events.length < 2) return [fields];
  const result: EncodedResponseFields[] = [];
  let current: Buffer[] = [];
  let currentBytes = overhead;
  for (const event of fields.events) {
    const bytes = eventFieldBytes(event);
    if (current.length > 0 && currentBytes + bytes >= maxBytes) {
      result.push({ ...fields, events: current, fragment: true });
      current = [];
      currentBytes = overhead;
    }
    current.push(event);
    currentBytes += bytes;
  }
  result.push({ ...fields, events: current, fragment: false });
  return result;
}
