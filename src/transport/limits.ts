/**
 * Every limit of the peer transport, kept in one place. A `PeerTransport` takes
 * these defaults; tests (and, later, flags) may override any of them.
 */
export interface TransportLimits {
  /**
   * Messages waiting to be written to one peer. When the queue is full, a new
   * message is dropped and the peer reported unreachable; Raft retransmits.
   * etcd's streamBufSize.
   */
  queuedMessagesPerPeerMax: number;
  /** The largest message frame accepted on a message stream; a larger one is a protocol error. */
  messageFrameBytesMax: number;
  /** The largest snapshot message (MsgSnap with its payload) sent or accepted. */
  snapshotBytesMax: number;
  /** Snapshots being sent to one peer at a time; one more fails at once. */
  snapshotsInFlightPerPeerMax: number;
  /**
   * HTTP/2 receive window, per stream and per connection, that a member grants
   * its peers: how many bytes a sender may have in flight before the receiver
   * has read them. Node's default (64 KiB) caps a stream at 64 KiB per round
   * trip; Go's HTTP/2 server, under etcd, grants 1 MiB.
   */
  receiveWindowBytes: number;
  /** First delay before reconnecting to a peer after a failure. */
  reconnectDelayMsMin: number;
  /** The delay doubles on each failure in a row, up to this. */
  reconnectDelayMsMax: number;
  /** A connection whose message stream is not accepted within this is abandoned and retried. */
  connectTimeoutMs: number;
  /** An open message stream's connection is checked with an HTTP/2 PING this often (etcd's link heartbeat). */
  pingIntervalMs: number;
  /**
   * A PING not answered within this means the connection is dead (a peer host
   * gone without a reset); it is dropped and reconnected. etcd's ConnReadTimeout.
   */
  pingTimeoutMs: number;
  /** A snapshot not acknowledged within this is reported failed. */
  snapshotSendTimeoutMs: number;
}

export const defaultTransportLimits: Readonly<TransportLimits> = Object.freeze({
  queuedMessagesPerPeerMax: 4096,
  messageFrameBytesMax: 64 * 1024 * 1024,
  snapshotBytesMax: 2 * 1024 * 1024 * 1024 - 1,
  snapshotsInFlightPerPeerMax: 1,
  receiveWindowBytes: 1024 * 1024,
  reconnectDelayMsMin: 100,
  reconnectDelayMsMax: 3200,
  connectTimeoutMs: 5000,
  pingIntervalMs: 2000,
  pingTimeoutMs: 5000,
  snapshotSendTimeoutMs: 5 * 60 * 1000,
});

/** The defaults with `overrides` applied; every limit must be a positive integer. */
export function resolveLimits(overrides: Partial<TransportLimits> = {}): TransportLimits {
  const limits = { ...defaultTransportLimits, ...overrides };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`transport limit ${name} must be a positive integer, got ${value}`);
  }
  if (limits.receiveWindowBytes < 65_535 || limits.receiveWindowBytes > 2 ** 31 - 1) throw new RangeError("transport limit receiveWindowBytes must be within 65535 and 2^31-1");
  if (limits.reconnectDelayMsMin > limits.reconnectDelayMsMax) throw new RangeError("transport limit reconnectDelayMsMin exceeds reconnectDelayMsMax");
  return limits;
}
