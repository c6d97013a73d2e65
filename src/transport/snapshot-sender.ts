import type { Timers } from "./backoff.js";
import { connectToPeer } from "./connection.js";
import { PeerRefusedError, TransportError } from "./errors.js";
import type { PeerTlsCredentials } from "./tls.js";
import { headerError, snapshotPath, requestHeaders, statusSnapshotReceived } from "./protocol.js";

export interface SnapshotRequest {
  url: URL;
  from: bigint;
  to: bigint;
  clusterId: bigint;
  /** The whole request body: one frame holding the MsgSnap message. */
  frame: Uint8Array;
  timers: Timers;
  timeoutMs: number;
  /** The peer TLS credentials, used when the URL is `https:`. */
  tls: PeerTlsCredentials | undefined;
}

/**
 * Sends one snapshot message on a connection of its own, so that a large
 * payload never holds up the message stream (nor shares its flow-control
 * window). Resolves when the receiver acknowledges it (204); rejects on any
 * failure or after `timeoutMs`. Returns a cancel function too, for stop().
 */
export function sendSnapshot(request: SnapshotRequest): { done: Promise<void>; cancel: () => void } {
  const session = connectToPeer(request.url, request.tls);
  let settled = false;
  let resolveDone!: () => void;
  let rejectDone!: (error: Error) => void;
  const done = new Promise<void>((resolve, reject) => {
    resolveDone = resolve;
    rejectDone = reject;
  });
  const finish = (error?: Error): void => {
    if (settled) return;
    settled = true;
    request.timers.clearTimeout(timer);
    session.destroy();
    if (error === undefined) resolveDone();
    else rejectDone(error);
  };
  const timer = request.timers.setTimeout(
    () => finish(new TransportError("snapshot_timeout", `snapshot not acknowledged within ${request.timeoutMs} ms`)),
    request.timeoutMs,
  );
  session.on("error", (error) => finish(error));
  session.on("close", () => finish(new TransportError("connection_closed", "connection closed before the snapshot was acknowledged")));
  const stream = session.request(requestHeaders(snapshotPath, request.from, request.to, request.clusterId));
  stream.on("error", (error) => finish(error));
  stream.on("response", (headers) => {
    const status = Number(headers[":status"]);
    if (status === statusSnapshotReceived) finish();
    else finish(new PeerRefusedError(status, String(headers[headerError] ?? "no reason given")));
  });
  stream.on("close", () => finish(new TransportError("stream_closed", "stream closed before the snapshot was acknowledged")));
  stream.resume();
  stream.end(request.frame);
  return { done, cancel: () => finish(new TransportError("canceled", "snapshot send canceled")) };
}
