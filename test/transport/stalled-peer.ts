import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { decodeMessage, type Message } from "../../src/raft/index.js";
import { FrameReader, protocol } from "../../src/transport/index.js";

/**
 * A hand-made peer for back-pressure tests. It accepts every request; message
 * streams are read (and their messages recorded) unless `stallMessages`;
 * snapshot requests are accepted but not read until `releaseSnapshots()`.
 * A stream that is not read holds its sender back through HTTP/2 flow control.
 */
export class StalledPeer {
  readonly messages: Message[] = [];
  readonly snapshots: Message[] = [];
  private readonly server = http2.createServer();
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private readonly heldSnapshots: http2.ServerHttp2Stream[] = [];
  private snapshotsReleased = false;

  constructor(private readonly stallMessages: boolean) {
    this.server.on("session", (session) => {
      this.sessions.add(session);
      session.on("close", () => this.sessions.delete(session));
      session.on("error", () => {});
    });
    this.server.on("stream", (stream, headers) => {
      stream.on("error", () => {});
      if (headers[":path"] === protocol.snapshotPath) {
        stream.pause();
        if (this.snapshotsReleased) this.readSnapshot(stream);
        else this.heldSnapshots.push(stream);
        return;
      }
      stream.respond({ ":status": protocol.statusAccepted });
      if (this.stallMessages) return void stream.pause();
      const reader = new FrameReader(64 * 1024 * 1024);
      stream.on("data", (chunk: Buffer) => this.messages.push(...reader.push(chunk).map(decodeMessage)));
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Starts reading the held snapshot requests (and any later ones), acknowledging each with 204. */
  releaseSnapshots(): void {
    this.snapshotsReleased = true;
    for (const stream of this.heldSnapshots.splice(0)) this.readSnapshot(stream);
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const session of this.sessions) session.destroy();
    await closed;
  }

  private readSnapshot(stream: http2.ServerHttp2Stream): void {
    const reader = new FrameReader(1024 * 1024 * 1024);
    stream.on("data", (chunk: Buffer) => this.snapshots.push(...reader.push(chunk).map(decodeMessage)));
    stream.on("end", () => stream.respond({ ":status": protocol.statusSnapshotReceived }, { endStream: true }));
    stream.resume();
  }
}
