/**
 * Failures of the peer transport: one base class with a stable code, a subclass
 * per failure. These are expected operating errors (a peer is down, a peer is
 * misconfigured); they are logged and counted, never thrown at Raft.
 */
export class TransportError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "TransportError";
  }
}

/** A frame announced a length beyond the limit: the stream is corrupt or hostile. */
export class FrameTooLargeError extends TransportError {
  constructor(
    readonly frameBytes: number,
    readonly frameBytesMax: number,
  ) {
    super("frame_too_large", `frame of ${frameBytes} bytes exceeds the limit of ${frameBytesMax}`);
    this.name = "FrameTooLargeError";
  }
}

/** A stream ended in the middle of a frame. */
export class TruncatedFrameError extends TransportError {
  constructor(readonly bufferedBytes: number) {
    super("truncated_frame", `stream ended inside a frame (${bufferedBytes} bytes buffered)`);
    this.name = "TruncatedFrameError";
  }
}

/** The remote member refused a request; `status` is its HTTP status, `reason` its explanation. */
export class PeerRefusedError extends TransportError {
  constructor(
    readonly status: number,
    readonly reason: string,
  ) {
    super("peer_refused", `peer refused the request with status ${status}: ${reason}`);
    this.name = "PeerRefusedError";
  }
}
