import { FrameTooLargeError, TruncatedFrameError } from "./errors.js";

/**
 * A frame on a peer stream:
 *
 *   offset 0  u32 BE  payload length
 *   offset 4  ...     payload (one raftpb.Message)
 *
 * The snapshot request body is one frame of the same shape.
 */
export const frameHeaderBytes = 4;
const frameLengthMax = 0xffff_ffff;

export function encodeFrame(payload: Uint8Array): Buffer {
  if (payload.length > frameLengthMax) throw new RangeError(`frame payload of ${payload.length} bytes does not fit a u32 length`);
  const frame = Buffer.allocUnsafe(frameHeaderBytes + payload.length);
  frame.writeUInt32BE(payload.length, 0);
  frame.set(payload, frameHeaderBytes);
  return frame;
}

/**
 * Reassembles frames from chunks split anywhere. Chunks are kept as received
 * until a whole frame is buffered, then copied once (or not at all, when one
 * chunk holds the whole frame), so a large frame in many chunks costs linear time.
 */
export class FrameReader {
  private readonly chunks: Buffer[] = [];
  /** Bytes of `chunks[0]` already consumed. */
  private headOffset = 0;
  private bufferedBytes = 0;

  constructor(private readonly frameBytesMax: number) {}

  /** Bytes received and not yet returned as part of a frame. */
  get pendingBytes(): number {
    return this.bufferedBytes;
  }

  /**
   * Adds a chunk; returns the payloads of the frames it completes, in order, as
   * plain Uint8Array views (which may share memory with the chunks). Throws FrameTooLargeError.
   */
  push(chunk: Uint8Array): Uint8Array[] {
    if (chunk.length > 0) {
      this.chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
      this.bufferedBytes += chunk.length;
    }
    const frames: Uint8Array[] = [];
    while (this.bufferedBytes >= frameHeaderBytes) {
      const length = this.take(frameHeaderBytes, false).readUInt32BE(0);
      if (length > this.frameBytesMax) throw new FrameTooLargeError(length, this.frameBytesMax);
      if (this.bufferedBytes < frameHeaderBytes + length) break;
      this.take(frameHeaderBytes, true);
      const payload = this.take(length, true);
      frames.push(new Uint8Array(payload.buffer, payload.byteOffset, payload.length));
    }
    return frames;
  }

  /** Throws TruncatedFrameError if the stream ended inside a frame. */
  end(): void {
    if (this.bufferedBytes !== 0) throw new TruncatedFrameError(this.bufferedBytes);
  }

  /** The next `count` buffered bytes (which must be there), consumed when `consume`. */
  private take(count: number, consume: boolean): Buffer {
    const head = this.chunks[0];
    if (count === 0) return Buffer.alloc(0);
    if (head !== undefined && head.length - this.headOffset >= count) {
      const bytes = head.subarray(this.headOffset, this.headOffset + count);
      if (consume) this.consume(count);
      return bytes;
    }
    const bytes = Buffer.allocUnsafe(count);
    let copied = 0;
    for (let index = 0; copied < count; index++) {
      const chunk = this.chunks[index]!;
      const start = index === 0 ? this.headOffset : 0;
      copied += chunk.copy(bytes, copied, start, Math.min(chunk.length, start + count - copied));
    }
    if (consume) this.consume(count);
    return bytes;
  }

  private consume(count: number): void {
    this.bufferedBytes -= count;
    let remaining = count;
    while (remaining > 0) {
      const head = this.chunks[0]!;
      const available = head.length - this.headOffset;
      if (available > remaining) {
        this.headOffset += remaining;
        return;
      }
      remaining -= available;
      this.chunks.shift();
      this.headOffset = 0;
    }
  }
}
