import type http2 from "node:http2";
import { encodeMessage, MessageType, type Message } from "../raft/index.js";
import { Backoff, type Timers } from "./backoff.js";
import { BoundedQueue } from "./bounded-queue.js";
import { connectToPeer } from "./connection.js";
import { PeerRefusedError } from "./errors.js";
import { encodeFrame } from "./frame.js";
import type { TransportLimits } from "./limits.js";
import type { TransportLogger } from "./logger.js";
import { formatId, headerError, messageStreamPath, requestHeaders, statusAccepted, statusGone } from "./protocol.js";
import { sendSnapshot } from "./snapshot-sender.js";
import { isTlsError, type PeerTlsCredentials } from "./tls.js";

/** What a peer needs from the transport that owns it. Hooks must not be called synchronously from send(). */
export interface PeerContext {
  memberId: bigint;
  clusterId: bigint;
  limits: TransportLimits;
  timers: Timers;
  logger: TransportLogger;
  /** The peer TLS credentials, used when dialling `https:` URLs. */
  tls: PeerTlsCredentials | undefined;
  reportUnreachable(peerId: bigint): void;
  reportSnapshotStatus(peerId: bigint, status: "finish" | "failure"): void;
  /** The peer answered that this member was removed from the cluster (410). */
  reportRemoved(peerId: bigint): void;
}

/** Frames are written to the stream in batches of about this many bytes: fewer writes, and back-pressure still holds. */
const flushBatchBytes = 8 * 1024;
/** Ping round trips kept for the metrics between two scrapes (one ping every 2 s: over 2 minutes' worth). */
const roundTripsKeptMax = 64;

/** A snapshot of one peer's sending side, for status pages and tests. */
export interface PeerStatus {
  /** The message stream is open and accepted by the peer. */
  connected: boolean;
  /** When (performance.now()) the open stream was accepted; undefined while not connected. etcd's ActiveSince. */
  activeSinceMs: number | undefined;
  /** Messages waiting to be written; never above `queuedMessagesPerPeerMax`. */
  queuedMessages: number;
  /** Messages dropped because the queue was full, since the peer was added. */
  droppedMessages: number;
  /** Bytes written to the peer's message streams since the peer was added. */
  sentBytes: number;
  snapshotsInFlight: number;
}

/**
 * The sending side towards one remote member: a bounded queue of encoded
 * messages, one long-lived message stream that is written as fast as HTTP/2
 * flow control allows ('drain'), reconnection with exponential backoff, and
 * snapshot messages sent on connections of their own.
 */
export class Peer {
  private urls: URL[];
  private urlIndex = 0;
  private readonly queue: BoundedQueue<Buffer>;
  private readonly backoff: Backoff;
  private session: http2.ClientHttp2Session | undefined;
  private stream: http2.ClientHttp2Stream | undefined;
  private accepted = false;
  private waitingForDrain = false;
  private activeSinceMs: number | undefined;
  /** Counts connection attempts; events of an older attempt are ignored. */
  private attempt = 0;
  private connectTimer: unknown;
  /** The next PING, or the wait for its answer. */
  private pingTimer: unknown;
  private reconnectTimer: unknown;
  private wasActive = false;
  /** The last connection failed in the TLS handshake; further such failures are logged at debug only. */
  private tlsFailing = false;
  private droppedMessages = 0;
  private sentBytes = 0;
  /** Round-trip times of the connection's pings not yet taken by the metrics; the newest are kept. */
  private roundTripsMs: number[] = [];
  private dropping = false;
  private readonly snapshotCancels = new Set<() => void>();
  private stopped = false;

  constructor(
    readonly id: bigint,
    urls: URL[],
    private readonly context: PeerContext,
  ) {
    if (urls.length === 0) throw new RangeError(`peer ${formatId(id)} has no URLs`);
    this.urls = urls;
    this.queue = new BoundedQueue(context.limits.queuedMessagesPerPeerMax);
    this.backoff = new Backoff(context.limits.reconnectDelayMsMin, context.limits.reconnectDelayMsMax);
  }

  start(): void {
    this.connect();
  }

  /** Queues a message (or starts a snapshot send); never blocks. */
  send(message: Message): void {
    this.sendAll([message]);
  }

  /**
   * Queues messages (snapshots start sends of their own) and writes them out
   * together. A message is dropped only when the queue is still full after
   * writing what the stream takes.
   */
  sendAll(messages: readonly Message[]): void {
    if (this.stopped) return;
    for (const message of messages) {
      if (message.type === MessageType.MsgSnap) {
        this.sendSnapshotMessage(message);
        continue;
      }
      const frame = encodeFrame(encodeMessage(message));
      if (frame.length > this.context.limits.messageFrameBytesMax) {
        this.drop(frame.length);
        continue;
      }
      if (!this.queue.push(frame)) {
        this.flush();
        if (!this.queue.push(frame)) {
          this.drop(frame.length);
          continue;
        }
      }
      this.dropping = false;
    }
    this.flush();
  }

  /** Replaces the peer's URLs and reconnects at once. */
  updateUrls(urls: URL[]): void {
    if (urls.length === 0) throw new RangeError(`peer ${formatId(this.id)} has no URLs`);
    this.urls = urls;
    this.urlIndex = 0;
    this.backoff.reset();
    this.disconnect();
    this.context.timers.clearTimeout(this.reconnectTimer);
    this.connect();
  }

  /** The ping round trips measured since the last call, in milliseconds (etcd's peer round-trip time). */
  takeRoundTripsMs(): number[] {
    const taken = this.roundTripsMs;
    this.roundTripsMs = [];
    return taken;
  }

  status(): PeerStatus {
    return {
      connected: this.accepted,
      activeSinceMs: this.activeSinceMs,
      queuedMessages: this.queue.length,
      droppedMessages: this.droppedMessages,
      sentBytes: this.sentBytes,
      snapshotsInFlight: this.snapshotCancels.size,
    };
  }

  /** Closes everything; queued messages are discarded and in-flight snapshots reported failed. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.context.timers.clearTimeout(this.reconnectTimer);
    this.disconnect();
    this.queue.clear();
    for (const cancel of [...this.snapshotCancels]) cancel();
  }

  private drop(frameBytes: number): void {
    this.droppedMessages++;
    if (frameBytes > this.context.limits.messageFrameBytesMax) {
      this.context.logger.error("dropped a message larger than the frame limit", { "remote-peer-id": formatId(this.id), bytes: frameBytes });
    } else if (!this.dropping) {
      this.dropping = true;
      this.context.logger.warn("dropped internal Raft message since sending buffer is full", { "remote-peer-id": formatId(this.id), "queue-size": this.queue.capacity });
    }
    this.context.reportUnreachable(this.id);
  }

  /**
   * Writes the queued frames, several to a write (up to `flushBatchBytes`),
   * until the queue is empty or the stream asks to wait for 'drain'.
   */
  private flush(): void {
    const stream = this.stream;
    while (this.accepted && !this.waitingForDrain && stream !== undefined && !this.stopped) {
      const frames: Buffer[] = [];
      let bytes = 0;
      while (bytes < flushBatchBytes) {
        const frame = this.queue.shift();
        if (frame === undefined) break;
        frames.push(frame);
        bytes += frame.length;
      }
      if (frames.length === 0) return;
      this.sentBytes += bytes;
      if (!stream.write(frames.length === 1 ? frames[0]! : Buffer.concat(frames, bytes))) this.waitingForDrain = true;
    }
  }

  private connect(): void {
    if (this.stopped) return;
    const attempt = ++this.attempt;
    const url = this.urls[this.urlIndex % this.urls.length]!;
    const fail = (reason: string, error?: unknown): void => {
      if (attempt === this.attempt) this.connectionLost(url, reason, error);
    };
    const session = connectToPeer(url, this.context.tls);
    session.on("error", (error) => fail("connection error", error));
    session.on("close", () => fail("connection closed"));
    const stream = session.request(requestHeaders(messageStreamPath, this.context.memberId, this.id, this.context.clusterId), { endStream: false });
    stream.on("response", (headers) => {
      const status = Number(headers[":status"]);
      if (status !== statusAccepted) return fail("refused", new PeerRefusedError(status, String(headers[headerError] ?? "no reason given")));
      if (attempt !== this.attempt) return;
      this.context.timers.clearTimeout(this.connectTimer);
      this.accepted = true;
      this.activeSinceMs = performance.now();
      this.wasActive = true;
      this.tlsFailing = false;
      this.backoff.reset();
      this.context.logger.info("established stream to remote peer", { "remote-peer-id": formatId(this.id), url: url.href });
      this.schedulePing(session, attempt, fail);
      this.flush();
    });
    stream.on("drain", () => {
      if (attempt !== this.attempt) return;
      this.waitingForDrain = false;
      this.flush();
    });
    stream.on("error", (error) => fail("stream error", error));
    stream.on("close", () => fail("stream closed"));
    stream.resume();
    this.session = session;
    this.stream = stream;
    this.connectTimer = this.context.timers.setTimeout(() => fail(`not accepted within ${this.context.limits.connectTimeoutMs} ms`), this.context.limits.connectTimeoutMs);
  }

  private connectionLost(url: URL, reason: string, error: unknown): void {
    this.disconnect();
    const fields = { "remote-peer-id": formatId(this.id), url: url.href, reason, error: error instanceof Error ? error.message : undefined };
    if (error instanceof PeerRefusedError) {
      this.context.logger.error("remote peer refused the message stream", fields);
      if (error.status === statusGone) this.context.reportRemoved(this.id);
    }
    else if (isTlsError(error) && !this.tlsFailing) this.context.logger.warn("TLS handshake with peer failed", fields);
    else if (this.wasActive) this.context.logger.warn("peer became inactive (message stream lost)", fields);
    else this.context.logger.debug("failed to connect to peer", fields);
    this.wasActive = false;
    this.tlsFailing = isTlsError(error);
    this.context.reportUnreachable(this.id);
    this.urlIndex++;
    const delayMs = this.backoff.nextDelayMs();
    this.reconnectTimer = this.context.timers.setTimeout(() => this.connect(), delayMs);
  }

  /** Pings the connection every pingIntervalMs; an answer missing after pingTimeoutMs fails it. */
  private schedulePing(session: http2.ClientHttp2Session, attempt: number, fail: (reason: string) => void): void {
    const { timers, limits } = this.context;
    this.pingTimer = timers.setTimeout(() => {
      if (attempt !== this.attempt) return;
      this.pingTimer = timers.setTimeout(() => fail(`ping not answered within ${limits.pingTimeoutMs} ms`), limits.pingTimeoutMs);
      const sent = session.ping((error, durationMs) => {
        if (attempt !== this.attempt || error !== null) return;
        timers.clearTimeout(this.pingTimer);
        this.roundTripsMs.push(durationMs);
        if (this.roundTripsMs.length > roundTripsKeptMax) this.roundTripsMs.shift();
        this.schedulePing(session, attempt, fail);
      });
      if (!sent) fail("ping could not be sent");
    }, limits.pingIntervalMs);
  }

  /** Closes the current connection, if any; its late events are ignored. */
  private disconnect(): void {
    this.attempt++;
    this.context.timers.clearTimeout(this.connectTimer);
    this.context.timers.clearTimeout(this.pingTimer);
    this.accepted = false;
    this.activeSinceMs = undefined;
    this.waitingForDrain = false;
    this.stream = undefined;
    this.session?.destroy();
    this.session = undefined;
  }

  private sendSnapshotMessage(message: Message): void {
    const fields = { "remote-peer-id": formatId(this.id), index: message.snapshot?.metadata.index };
    const frame = encodeFrame(encodeMessage(message));
    if (this.snapshotCancels.size >= this.context.limits.snapshotsInFlightPerPeerMax || frame.length > this.context.limits.snapshotBytesMax) {
      this.context.logger.warn("refused to send a snapshot (one in flight already, or too large)", { ...fields, bytes: frame.length });
      this.context.reportSnapshotStatus(this.id, "failure");
      return;
    }
    const url = this.urls[this.urlIndex % this.urls.length]!;
    const { done, cancel } = sendSnapshot({
      url,
      from: this.context.memberId,
      to: this.id,
      clusterId: this.context.clusterId,
      frame,
      timers: this.context.timers,
      timeoutMs: this.context.limits.snapshotSendTimeoutMs,
      tls: this.context.tls,
    });
    this.snapshotCancels.add(cancel);
    this.context.logger.info("sending database snapshot", { ...fields, bytes: frame.length });
    done.then(
      () => {
        this.snapshotCancels.delete(cancel);
        this.context.logger.info("sent database snapshot", fields);
        this.context.reportSnapshotStatus(this.id, "finish");
      },
      (error: unknown) => {
        this.snapshotCancels.delete(cancel);
        this.context.logger.warn("failed to send database snapshot", { ...fields, error: error instanceof Error ? error.message : String(error) });
        this.context.reportUnreachable(this.id);
        this.context.reportSnapshotStatus(this.id, "failure");
      },
    );
  }
}
