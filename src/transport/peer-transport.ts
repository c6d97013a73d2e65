import type http2 from "node:http2";
import type net from "node:net";
import type { Message } from "../raft/index.js";
import { systemTimers, type Timers } from "./backoff.js";
import { checkListenUrl, createPeerServer, parsePeerUrl } from "./connection.js";
import { resolveLimits, type TransportLimits } from "./limits.js";
import { silentTransportLogger, type TransportLogger } from "./logger.js";
import { Peer, type PeerContext, type PeerStatus } from "./peer.js";
import { formatId } from "./protocol.js";
import { handlePeerRequest, type ReceiverContext } from "./receiver.js";
import { resolvePeerTls, type PeerTlsCredentials, type PeerTlsOptions } from "./tls.js";

export type SnapshotStatus = "finish" | "failure";

export interface PeerTransportOptions {
  memberId: bigint;
  clusterId: bigint;
  /** URLs to listen on for peers (`http://host:port` or, with `tls`, `https://host:port`; port 0 picks a free one). */
  listenUrls?: string[];
  /** Shorthand for one listen URL `http://host:port`, when listenUrls is not given. */
  host?: string;
  port?: number;
  logger?: TransportLogger;
  limits?: Partial<TransportLimits>;
  /** Timers for reconnection backoff and timeouts; the system's by default. */
  timers?: Timers;
  /**
   * Peer TLS (etcd's --peer-cert-file, --peer-key-file, --peer-trusted-ca-file,
   * --peer-client-cert-auth): file paths, read and checked by the constructor
   * (once per options object, shared with `connectPeer`), or credentials
   * already read by `loadPeerTls`. Used on `https:` listen URLs
   * (required there) and when dialling `https:` peer URLs; `http:` URLs stay
   * in clear text either way.
   */
  tls?: PeerTlsOptions | PeerTlsCredentials | undefined;
}

/**
 * The peer transport of one member: listens for the other members' streams,
 * and keeps one outgoing message stream to each known peer.
 *
 * `send` never blocks and never calls a hook synchronously; the hooks
 * (`onMessage`, `onUnreachable`, `onSnapshotStatus`) run later on the event
 * loop, so the caller may forward them straight to RawNode.step,
 * RawNode.reportUnreachable and RawNode.reportSnapshot.
 */
export class PeerTransport {
  readonly memberId: bigint;
  readonly clusterId: bigint;
  readonly limits: TransportLimits;
  private readonly logger: TransportLogger;
  private readonly timers: Timers;
  private readonly listenUrls: URL[];
  private readonly tls: PeerTlsCredentials | undefined;
  private readonly servers: net.Server[] = [];
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private readonly incomingStreams = new Map<bigint, Set<http2.ServerHttp2Stream>>();
  private readonly peers = new Map<bigint, Peer>();
  private readonly bytesReceived = new Map<bigint, number>();
  private readonly removed = new Set<bigint>();
  private messageHandler: (message: Message) => void = () => {};
  private unreachableHandler: (peerId: bigint) => void = () => {};
  private snapshotStatusHandler: (peerId: bigint, status: SnapshotStatus) => void = () => {};
  private removedHandler: (peerId: bigint) => void = () => {};
  private otherHandler: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => boolean = () => false;
  private started = false;
  private stopped = false;

  constructor(options: PeerTransportOptions) {
    this.memberId = options.memberId;
    this.clusterId = options.clusterId;
    this.limits = resolveLimits(options.limits);
    this.logger = options.logger ?? silentTransportLogger;
    this.timers = options.timers ?? systemTimers;
    const urls = options.listenUrls ?? [`http://${options.host ?? "127.0.0.1"}:${options.port ?? 0}`];
    if (urls.length === 0) throw new RangeError("the peer transport needs at least one listen URL");
    this.listenUrls = urls.map(parsePeerUrl);
    this.tls = resolvePeerTls(options.tls);
    for (const url of this.listenUrls) checkListenUrl(url, this.tls);
  }

  /** Starts listening on every listen URL; resolves once all are bound. */
  async start(): Promise<void> {
    if (this.started) throw new Error("peer transport already started");
    this.started = true;
    const receiver = this.receiverContext();
    for (const url of this.listenUrls) {
      const server = createPeerServer(url, this.limits.receiveWindowBytes, this.tls, {
        session: (session) => {
          this.sessions.add(session);
          session.on("close", () => this.sessions.delete(session));
          session.on("error", () => {});
        },
        stream: (stream, headers) => handlePeerRequest(stream, headers, receiver),
        tlsClientError: (reason, remoteAddress) => this.logger.warn("rejected a peer connection in the TLS handshake", { address: url.href, "remote-addr": remoteAddress, error: reason }),
      });
      this.servers.push(server);
      if (url.protocol === "http:" && this.tls !== undefined) {
        this.logger.warn("scheme is HTTP while key and cert files are present; ignoring key and cert files", { "peer-url": url.href });
      }
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(Number(url.port), url.hostname.replace(/^\[|\]$/g, ""), () => {
          server.off("error", reject);
          resolve();
        });
      });
      this.logger.info("listening for peers", { address: url.href });
    }
  }

  /** The URLs actually listened on (with the bound port when 0 was asked for). */
  get boundUrls(): string[] {
    return this.servers.map((server, index) => {
      const url = new URL(this.listenUrls[index]!.href);
      url.port = String((server.address() as net.AddressInfo).port);
      return url.origin;
    });
  }

  /** Sets the handler of every message received from a peer (checked to come from the stream's sender and to be for this member). */
  onMessage(handler: (message: Message) => void): void {
    this.messageHandler = handler;
  }

  /**
   * Sets the handler called when a peer could not be reached: a connection
   * failed or was lost, a message was dropped on a full queue, or a snapshot
   * send failed. Meant for RawNode.reportUnreachable.
   */
  onUnreachable(handler: (peerId: bigint) => void): void {
    this.unreachableHandler = handler;
  }

  /** Sets the handler told how each snapshot send ended (acknowledged by the peer, or not). Meant for RawNode.reportSnapshot. */
  onSnapshotStatus(handler: (peerId: bigint, status: SnapshotStatus) => void): void {
    this.snapshotStatusHandler = handler;
  }

  /** Sets the handler called when a peer refuses this member's stream because it was removed from the cluster (410). */
  onRemoved(handler: (peerId: bigint) => void): void {
    this.removedHandler = handler;
  }

  /** Sets the handler of requests for other paths on the peer port; it returns false for a path it does not serve. */
  onOtherRequest(handler: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => boolean): void {
    this.otherHandler = handler;
  }

  /** Starts streaming to a new peer. Adding a known peer is an error. */
  addPeer(peerId: bigint, urls: string[]): void {
    if (peerId === this.memberId) throw new RangeError(`member ${formatId(peerId)} cannot be its own peer`);
    if (this.peers.has(peerId)) throw new RangeError(`peer ${formatId(peerId)} already added`);
    if (this.stopped) throw new Error("peer transport stopped");
    const peer = new Peer(peerId, urls.map(parsePeerUrl), this.peerContext());
    this.removed.delete(peerId);
    this.peers.set(peerId, peer);
    peer.start();
    this.logger.info("added remote peer", { "remote-peer-id": formatId(peerId), "remote-peer-urls": urls });
  }

  /** Stops streaming to a peer and refuses its streams from now on (410). */
  removePeer(peerId: bigint): void {
    const peer = this.peers.get(peerId);
    peer?.stop();
    this.peers.delete(peerId);
    this.removed.add(peerId);
    for (const stream of this.incomingStreams.get(peerId) ?? []) stream.close();
    this.incomingStreams.delete(peerId);
    this.logger.info("removed remote peer", { "remote-peer-id": formatId(peerId) });
  }

  /** Changes a peer's URLs; its stream reconnects to the new ones. */
  updatePeer(peerId: bigint, urls: string[]): void {
    const peer = this.peers.get(peerId);
    if (peer === undefined) throw new RangeError(`peer ${formatId(peerId)} is not known`);
    peer.updateUrls(urls.map(parsePeerUrl));
    this.logger.info("updated remote peer", { "remote-peer-id": formatId(peerId), "remote-peer-urls": urls });
  }

  /** Queues messages to their peers (`message.to`); never blocks. Messages to unknown peers are dropped. */
  send(messages: readonly Message[]): void {
    if (messages.length === 1) {
      this.peerFor(messages[0]!.to)?.send(messages[0]!);
      return;
    }
    // Each peer's messages are written together: one write for a Ready's worth.
    const byPeer = new Map<bigint, Message[]>();
    for (const message of messages) {
      const batch = byPeer.get(message.to);
      if (batch === undefined) byPeer.set(message.to, [message]);
      else batch.push(message);
    }
    for (const [to, batch] of byPeer) this.peerFor(to)?.sendAll(batch);
  }

  private peerFor(id: bigint): Peer | undefined {
    const peer = this.peers.get(id);
    if (peer === undefined && !this.stopped) this.logger.debug("ignored message send request; unknown remote peer target", { "remote-peer-id": formatId(id) });
    return peer;
  }

  /** The ids of the peers streamed to. */
  peerIds(): bigint[] {
    return [...this.peers.keys()];
  }

  /** The sending side's state towards a peer (connected, queued, dropped); undefined for an unknown peer. */
  peerStatus(peerId: bigint): PeerStatus | undefined {
    return this.peers.get(peerId)?.status();
  }

  /** The ping round trips to a peer measured since the last call, in milliseconds. */
  takePeerRoundTripsMs(peerId: bigint): number[] {
    return this.peers.get(peerId)?.takeRoundTripsMs() ?? [];
  }

  /** Bytes received on message streams from each peer. */
  receivedBytes(): ReadonlyMap<bigint, number> {
    return this.bytesReceived;
  }

  /** Closes every stream, connection and listener; hooks are not called afterwards. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const peer of this.peers.values()) peer.stop();
    this.peers.clear();
    const closed = this.servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
    for (const session of this.sessions) session.destroy();
    await Promise.all(closed);
  }

  private peerContext(): PeerContext {
    return {
      memberId: this.memberId,
      clusterId: this.clusterId,
      limits: this.limits,
      timers: this.timers,
      logger: this.logger,
      tls: this.tls,
      reportUnreachable: (peerId) => this.later(() => this.unreachableHandler(peerId)),
      reportSnapshotStatus: (peerId, status) => this.later(() => this.snapshotStatusHandler(peerId, status)),
      reportRemoved: (peerId) => this.later(() => this.removedHandler(peerId)),
    };
  }

  private receiverContext(): ReceiverContext {
    return {
      memberId: this.memberId,
      clusterId: this.clusterId,
      limits: this.limits,
      logger: this.logger,
      isRemoved: (peerId) => this.removed.has(peerId),
      deliver: (message) => {
        if (!this.stopped) this.messageHandler(message);
      },
      handleOther: (stream, headers) => !this.stopped && this.otherHandler(stream, headers),
      countReceived: (peerId, bytes) => this.bytesReceived.set(peerId, (this.bytesReceived.get(peerId) ?? 0) + bytes),
      trackStream: (peerId, stream) => {
        const streams = this.incomingStreams.get(peerId) ?? new Set();
        this.incomingStreams.set(peerId, streams);
        for (const older of streams) older.close();
        streams.clear();
        streams.add(stream);
        return () => streams.delete(stream);
      },
    };
  }

  /** Runs a hook after the current call returns, unless the transport has stopped by then. */
  private later(hook: () => void): void {
    queueMicrotask(() => {
      if (!this.stopped) hook();
    });
  }
}
