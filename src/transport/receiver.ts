import http2 from "node:http2";
import { decodeMessage, MessageType, type Message } from "../raft/index.js";
import { FrameReader } from "./frame.js";
import type { TransportLimits } from "./limits.js";
import type { TransportLogger } from "./logger.js";
import {
  formatId,
  headerClusterId,
  headerError,
  headerFrom,
  headerTo,
  messageStreamPath,
  parseId,
  snapshotPath,
  statusAccepted,
  statusBadRequest,
  statusGone,
  statusNotFound,
  statusPreconditionFailed,
  statusSnapshotReceived,
} from "./protocol.js";

/** What the receiving side needs from the transport that owns it. */
export interface ReceiverContext {
  memberId: bigint;
  clusterId: bigint;
  limits: TransportLimits;
  logger: TransportLogger;
  isRemoved(peerId: bigint): boolean;
  deliver(message: Message): void;
  /**
   * Registers an open message stream from `peerId`, closing any older one from
   * the same peer (a reconnecting sender supersedes its previous stream); the
   * returned function unregisters it.
   */
  trackStream(peerId: bigint, stream: http2.ServerHttp2Stream): () => void;
  /** Counts bytes read from a peer's message stream, for the metrics. */
  countReceived(peerId: bigint, bytes: number): void;
  /** Answers a request for another path on the peer port (the server's own endpoints); false when none matches. */
  handleOther(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): boolean;
}

/** Handles one incoming request on the peer port: checks who sends it, then reads the message stream or the snapshot. */
export function handlePeerRequest(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, context: ReceiverContext): void {
  const path = headers[":path"];
  if (headers[":method"] !== "POST" || (path !== messageStreamPath && path !== snapshotPath)) {
    if (context.handleOther(stream, headers)) return;
    return refuse(stream, statusNotFound, `no peer endpoint ${headers[":method"]} ${path}`, context);
  }
  const from = parseId(headers[headerFrom]);
  const to = parseId(headers[headerTo]);
  const clusterId = parseId(headers[headerClusterId]);
  if (from === undefined || to === undefined || clusterId === undefined) {
    return refuse(stream, statusBadRequest, `missing or malformed ${headerFrom}, ${headerTo} or ${headerClusterId} header`, context);
  }
  if (clusterId !== context.clusterId) {
    return refuse(stream, statusPreconditionFailed, `cluster ID mismatch: local ${formatId(context.clusterId)}, remote ${formatId(clusterId)}`, context);
  }
  if (to !== context.memberId) {
    return refuse(stream, statusPreconditionFailed, `member ID mismatch: this member is ${formatId(context.memberId)}, the request is for ${formatId(to)}`, context);
  }
  if (context.isRemoved(from)) {
    return refuse(stream, statusGone, `member ${formatId(from)} has been permanently removed from the cluster`, context);
  }
  if (path === messageStreamPath) readMessageStream(stream, from, context);
  else readSnapshot(stream, from, context);
}

function refuse(stream: http2.ServerHttp2Stream, status: number, reason: string, context: ReceiverContext): void {
  context.logger.warn("refused a request from a peer", { status, reason });
  if (stream.headersSent || stream.destroyed) return;
  stream.respond({ ":status": status, [headerError]: reason, "content-type": "text/plain" });
  stream.end(reason);
  stream.resume();
}

/** A message that does not belong on this stream: the sender is confused or hostile. */
function checkMessage(message: Message, from: bigint, context: ReceiverContext): string | undefined {
  if (message.from !== from) return `message from ${formatId(message.from)} on the stream of ${formatId(from)}`;
  if (message.to !== context.memberId) return `message for ${formatId(message.to)} received by ${formatId(context.memberId)}`;
  return undefined;
}

function readMessageStream(stream: http2.ServerHttp2Stream, from: bigint, context: ReceiverContext): void {
  stream.respond({ ":status": statusAccepted });
  const untrack = context.trackStream(from, stream);
  const reader = new FrameReader(context.limits.messageFrameBytesMax);
  let failed = false;
  const fail = (reason: string): void => {
    failed = true;
    context.logger.warn("closed a bad message stream from a peer", { "remote-peer-id": formatId(from), reason });
    stream.close(http2.constants.NGHTTP2_PROTOCOL_ERROR);
  };
  stream.on("data", (chunk: Buffer) => {
    context.countReceived(from, chunk.length);
    if (failed) return;
    let messages: Message[];
    try {
      messages = reader.push(chunk).map(decodeMessage);
    } catch (error) {
      return fail(error instanceof Error ? error.message : String(error));
    }
    for (const message of messages) {
      const problem = checkMessage(message, from, context);
      if (problem !== undefined) return fail(problem);
      context.deliver(message);
    }
  });
  stream.on("error", () => {});
  stream.on("close", untrack);
}

function readSnapshot(stream: http2.ServerHttp2Stream, from: bigint, context: ReceiverContext): void {
  const reader = new FrameReader(context.limits.snapshotBytesMax);
  const frames: Uint8Array[] = [];
  let failed = false;
  const fail = (reason: string): void => {
    failed = true;
    refuse(stream, statusBadRequest, `bad snapshot from ${formatId(from)}: ${reason}`, context);
  };
  stream.on("data", (chunk: Buffer) => {
    if (failed) return;
    try {
      frames.push(...reader.push(chunk));
    } catch (error) {
      fail(error instanceof Error ? error.message : String(error));
    }
  });
  stream.on("end", () => {
    if (failed) return;
    let message: Message;
    try {
      reader.end();
      if (frames.length !== 1) throw new Error(`expected one frame, got ${frames.length}`);
      message = decodeMessage(frames[0]!);
    } catch (error) {
      return fail(error instanceof Error ? error.message : String(error));
    }
    if (message.type !== MessageType.MsgSnap) return fail(`expected MsgSnap, got ${MessageType[message.type]}`);
    const problem = checkMessage(message, from, context);
    if (problem !== undefined) return fail(problem);
    context.logger.info("received database snapshot", { "remote-peer-id": formatId(from), index: message.snapshot?.metadata.index });
    context.deliver(message);
    if (!stream.destroyed) stream.respond({ ":status": statusSnapshotReceived }, { endStream: true });
  });
  stream.on("error", () => {});
}
