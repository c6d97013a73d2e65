/** The peer transport: Raft messages between members over HTTP/2 streams. */
export { PeerTransport } from "./peer-transport.js";
export { connectPeer } from "./connection.js";
export { loadPeerTls } from "./tls.js";
export type { PeerTlsOptions, PeerTlsCredentials } from "./tls.js";
export type { PeerTransportOptions, SnapshotStatus } from "./peer-transport.js";
export type { PeerStatus } from "./peer.js";
export { defaultTransportLimits, resolveLimits } from "./limits.js";
export type { TransportLimits } from "./limits.js";
export type { TransportLogger } from "./logger.js";
export type { Timers } from "./backoff.js";
export { systemTimers, Backoff } from "./backoff.js";
export { TransportError, FrameTooLargeError, TruncatedFrameError, PeerRefusedError } from "./errors.js";
export { encodeFrame, FrameReader, frameHeaderBytes } from "./frame.js";
export * as protocol from "./protocol.js";
