import { create, toBinary } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import {
  ResponseHeaderSchema,
  WatchCreateRequest_FilterType as FilterType,
  WatchResponseSchema,
  type ResponseHeader,
  type WatchCreateRequest,
  type WatchRequest,
  type WatchResponse,
} from "../gen/etcdserverpb/rpc_pb.js";
import { Event_EventType, EventSchema, type Event } from "../gen/mvccpb/kv_pb.js";
import { keyToString, rangeEndToString } from "../mvcc/keys.js";
import { watchLimits } from "../mvcc/watch/limits.js";
import { WatchableStore, WatchError, type WatchEvent, type WatcherResponse, type WatchSink, type WatchStream } from "../mvcc/watchable-store.js";
import type { EtcdServer } from "../server/member.js";
import { toKeyValueMessage } from "../server/range.js";

/** The watch id of responses that belong to no watcher (a failed create, a stream-wide progress response). */
const noWatchId = -1n;

/** Watch responses may exceed --max-request-bytes by this much before etcd fragments them. */
const fragmentOverheadBytes = 512 * 1024;

type WatchCall = grpc.ServerDuplexStream<WatchRequest, WatchResponse>;

/**
 * etcd's Watch service: one watchable store for the member, one session per
 * client stream. `close` ends every stream, so that the server can shut down.
 */
export class WatchHub {
  readonly store: WatchableStore;
  private readonly sessions = new Set<WatchSession>();

  constructor(private readonly server: EtcdServer) {
    this.store = new WatchableStore(server.store);
  }

  service(): grpc.UntypedServiceImplementation {
    return {
      watch: (call: WatchCall) => {
        const session = new WatchSession(this.server, this.store, call, () => this.sessions.delete(session));
        this.sessions.add(session);
      },
    };
  }

  close(): void {
    for (const session of [...this.sessions]) session.end();
    this.store.close();
  }
}

/** A response waiting for the gRPC stream to take it. */
interface QueuedResponse {
  message: WatchResponse;
  bytes: number;
}

/**
 * One client stream: turns requests into watchers, and sends responses in the
 * order the store offers them. Responses wait in a queue bounded by
 * `streamBufferBytesMax` while gRPC reports backpressure; past it the store
 * makes victims of the stream's watchers instead of waiting.
 */
class WatchSession implements WatchSink {
  private readonly stream: WatchStream;
  private readonly queue: QueuedResponse[] = [];
  private queuedBytes = 0;
  private writable = true;
  private ended = false;
  /** Watchers that asked for progress notifications: true when due one (no events since the last tick). */
  private readonly progressDue = new Map<number, boolean>();
  private readonly fragmenting = new Set<number>();
  private progressPending = false;
  private readonly progressTimer: NodeJS.Timeout;

  constructor(
    private readonly server: EtcdServer,
    private readonly store: WatchableStore,
    private readonly call: WatchCall,
    private readonly onEnd: () => void,
  ) {
    this.stream = store.newStream(this);
    call.on("data", (request: WatchRequest) => this.handle(request));
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

  offer(response: WatcherResponse, bytes: number, required: boolean): boolean {
    if (this.ended) return true;
    if (!required && this.full()) return false;
    if (response.events.length > 0 && this.progressDue.has(response.watchId)) this.progressDue.set(response.watchId, false);
    const message = create(WatchResponseSchema, {
      header: this.header(response.revision),
      watchId: BigInt(response.watchId),
      canceled: response.compactRevision !== 0,
      compactRevision: BigInt(response.compactRevision),
      events: response.events.map(toEventMessage),
    });
    const fragmentBytes = this.server.config.maxRequestBytes + fragmentOverheadBytes;
    if (this.fragmenting.has(response.watchId) && bytes >= fragmentBytes / 2) {
      const parts = fragments(message, fragmentBytes);
      for (const part of parts) this.enqueue(part, Math.ceil(bytes / parts.length));
    } else {
      this.enqueue(message, bytes);
    }
    return true;
  }

  full(): boolean {
    return this.queuedBytes >= watchLimits.streamBufferBytesMax;
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
    this.queue.length = 0;
    this.queuedBytes = 0;
    if (!this.call.destroyed && !this.call.writableEnded) this.call.end();
    this.onEnd();
  }

  private handle(request: WatchRequest): void {
    if (this.ended) return;
    const union = request.requestUnion;
    if (union.case === "createRequest") this.create(union.value);
    else if (union.case === "cancelRequest") this.cancel(Number(union.value.watchId));
    else if (union.case === "progressRequest") this.requestProgress();
  }

  private create(request: WatchCreateRequest): void {
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
    if (request.progressNotify) this.progressDue.set(id, true);
    if (request.fragment) this.fragmenting.add(id);
    this.control({ watchId: BigInt(id), created: true });
  }

  private cancel(id: number): void {
    if (!this.stream.cancel(id)) return;
    this.progressDue.delete(id);
    this.fragmenting.delete(id);
    this.control({ watchId: BigInt(id), canceled: true });
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

  private control(fields: { watchId: bigint; created?: boolean; canceled?: boolean; cancelReason?: string }): void {
    if (this.ended) return;
    this.enqueue(create(WatchResponseSchema, { header: this.header(this.store.currentRevision), ...fields }), watchLimits.eventOverheadBytes);
  }

  private header(revision: number): ResponseHeader {
    return create(ResponseHeaderSchema, {
      clusterId: this.server.clusterId,
      memberId: this.server.memberId,
      raftTerm: BigInt(this.server.term),
      revision: BigInt(revision),
    });
  }

  private enqueue(message: WatchResponse, bytes: number): void {
    this.queue.push({ message, bytes });
    this.queuedBytes += bytes;
    this.pump();
  }

  private pump(): void {
    const wasFull = this.full();
    let sent = 0;
    while (this.writable && sent < this.queue.length && !this.ended) {
      const { message, bytes } = this.queue[sent++]!;
      this.queuedBytes -= bytes;
      this.writable = this.call.write(message);
    }
    if (sent > 0) this.queue.splice(0, sent);
    if (wasFull && !this.full()) this.stream.resume();
    else if (this.writable && this.stream.victims.size > 0) this.stream.resume();
  }
}

function toEventMessage(event: WatchEvent): Event {
  return create(EventSchema, {
    type: event.type === "put" ? Event_EventType.PUT : Event_EventType.DELETE,
    kv: toKeyValueMessage(event.kv),
    ...(event.prevKv === undefined ? {} : { prevKv: toKeyValueMessage(event.prevKv) }),
  });
}

/**
 * Splits a response too large for one message into fragments of fewer than
 * `maxBytes` each (at least one event each), as etcd does for a watcher that
 * asked for fragments: every fragment but the last has `fragment` set.
 */
export function fragments(message: WatchResponse, maxBytes: number): WatchResponse[] {
  const totalBytes = toBinary(WatchResponseSchema, message).length;
  if (totalBytes < maxBytes || message.events.length < 2) return [message];
  const baseBytes = toBinary(WatchResponseSchema, { ...message, events: [] }).length;
  const result: WatchResponse[] = [];
  let current: Event[] = [];
  let currentBytes = baseBytes;
  for (const event of message.events) {
    const eventLength = toBinary(EventSchema, event).length;
    const bytes = 1 + varintLength(eventLength) + eventLength;
    if (current.length > 0 && currentBytes + bytes >= maxBytes) {
      result.push(create(WatchResponseSchema, { ...message, events: current, fragment: true }));
      current = [];
      currentBytes = baseBytes;
    }
    current.push(event);
    currentBytes += bytes;
  }
  result.push(create(WatchResponseSchema, { ...message, events: current, fragment: false }));
  return result;
}

function varintLength(value: number): number {
  let length = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    length++;
  }
  return length;
}
