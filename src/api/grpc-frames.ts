/**
 * gRPC's length-prefixed messages on an HTTP/2 stream:
 *
 *   offset 0  u8      compressed flag (tetcd accepts only uncompressed messages)
 *   offset 1  u32 BE  message length
 *   offset 5  ...     message bytes
 */
export const framePrefixBytes = 5;

export function frameMessage(message: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(framePrefixBytes + message.length);
  frame[0] = 0;
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, framePrefixBytes);
  return frame;
}

export type FrameEvent = { kind: "message"; message: Buffer } | { kind: "too-large"; length: number } | { kind: "compressed" };

/** Accumulates DATA chunks and yields whole messages, whatever the chunk boundaries. */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly maxMessageBytes: number) {}

  push(chunk: Buffer): FrameEvent[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const events: FrameEvent[] = [];
    while (this.buffered >= framePrefixBytes) {
      const head = this.peek(framePrefixBytes);
      const length = head.readUInt32BE(1);
      if (head[0] !== 0) return [...events, { kind: "compressed" }];
      if (length > this.maxMessageBytes) return [...events, { kind: "too-large", length }];
      if (this.buffered < framePrefixBytes + length) break;
      const frame = this.take(framePrefixBytes + length);
      events.push({ kind: "message", message: frame.subarray(framePrefixBytes) });
    }
    return events;
  }

  /** True when a partial message is left over. */
  get pending(): boolean {
    return this.buffered > 0;
  }

  private peek(length: number): Buffer {
    if (this.chunks[0]!.length < length) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!.subarray(0, length);
  }

  private take(length: number): Buffer {
    if (this.chunks[0]!.length < length) this.chunks = [Buffer.concat(this.chunks)];
    const first = this.chunks[0]!;
    const taken = first.subarray(0, length);
    if (first.length === length) this.chunks.shift();
    else this.chunks[0] = first.subarray(length);
    this.buffered -= length;
    return taken;
  }
}

/** grpc-message is percent-encoded: bytes outside printable ASCII, and '%' itself. */
export function encodeGrpcMessage(message: string): string {
  let encoded = "";
  for (const byte of Buffer.from(message, "utf8")) {
    encoded += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return encoded;
}
