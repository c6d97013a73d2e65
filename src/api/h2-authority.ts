import { Duplex } from "node:stream";
import type * as net from "node:net";

/**
 * etcdctl 3.4 and other Go gRPC clients dialled with an endpoint like
 * `http://10.0.0.1:2379` send that whole URL as the HTTP/2 `:authority`.
 * Go's server accepts it; Node's HTTP/2 layer (nghttp2) refuses the stream as
 * malformed before any JavaScript sees it, so `etcdctl --cluster` and
 * URL-style endpoints could not reach a tetcd member.
 *
 * This module sits between such a connection and the HTTP/2 server and
 * rewrites, in each HEADERS frame, an `:authority` value of the form
 * `scheme://host:port` to `host:port`. The header block is walked with HPACK's
 * rules (RFC 7541); only the one literal is re-encoded, as a plain string with
 * the same representation, so the dynamic tables of client and server keep
 * their entries in the same order (the server's entry is only shorter, so the
 * server never evicts an entry the client still refers to).
 */

/** HPACK's Huffman code lengths for symbols 0..256 (RFC 7541, Appendix B); the code is canonical. */
const huffmanLengths = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
];

const endOfString = 256;

/** Canonical decoding tables: per code length, the first code, how many codes, and where their symbols start. */
const huffman = (() => {
  const maxLength = 30;
  const symbols = [...huffmanLengths.keys()].sort((a, b) => huffmanLengths[a]! - huffmanLengths[b]! || a - b);
  const count = new Array<number>(maxLength + 1).fill(0);
  for (const length of huffmanLengths) count[length]!++;
  const firstCode = new Array<number>(maxLength + 1).fill(0);
  const firstSymbol = new Array<number>(maxLength + 1).fill(0);
  let code = 0;
  let position = 0;
  for (let length = 1; length <= maxLength; length++) {
    firstCode[length] = code;
    firstSymbol[length] = position;
    code = (code + count[length]!) * 2;
    position += count[length]!;
  }
  const codeOf = new Array<number>(huffmanLengths.length).fill(0);
  symbols.forEach((symbol, rank) => {
    const length = huffmanLengths[symbol]!;
    codeOf[symbol] = firstCode[length]! + (rank - firstSymbol[length]!);
  });
  return { maxLength, symbols, count, firstCode, firstSymbol, codeOf };
})();

export class HpackError extends Error {}

/** Decodes a Huffman-coded string (RFC 7541 section 5.2). */
export function huffmanDecode(bytes: Uint8Array): Buffer {
  const out: number[] = [];
  let code = 0;
  let length = 0;
  for (const byte of bytes) {
    for (let bit = 7; bit >= 0; bit--) {
      code = code * 2 + ((byte >> bit) & 1);
      length++;
      if (length > huffman.maxLength) throw new HpackError("invalid Huffman code");
      const offset = code - huffman.firstCode[length]!;
      if (offset >= 0 && offset < huffman.count[length]!) {
        const symbol = huffman.symbols[huffman.firstSymbol[length]! + offset]!;
        if (symbol === endOfString) throw new HpackError("end of string in a Huffman-coded string");
        out.push(symbol);
        code = 0;
        length = 0;
      }
    }
  }
  // What is left must be padding: fewer than 8 bits, all ones.
  if (length >= 8 || code !== 2 ** length - 1) throw new HpackError("invalid Huffman padding");
  return Buffer.from(out);
}

/** Huffman-codes a string (RFC 7541 section 5.2), padding the last byte with ones. */
export function huffmanEncode(bytes: Uint8Array): Buffer {
  const out: number[] = [];
  let pending = 0;
  let pendingBits = 0;
  for (const byte of bytes) {
    const length = huffmanLengths[byte]!;
    pending = pending * 2 ** length + huffman.codeOf[byte]!;
    pendingBits += length;
    while (pendingBits >= 8) {
      pendingBits -= 8;
      out.push(Math.floor(pending / 2 ** pendingBits) & 0xff);
      pending %= 2 ** pendingBits;
    }
  }
  if (pendingBits > 0) out.push(((pending << (8 - pendingBits)) | (2 ** (8 - pendingBits) - 1)) & 0xff);
  return Buffer.from(out);
}

/** An HPACK integer with an N-bit prefix at `offset`; returns its value and the offset after it. */
function readInteger(block: Buffer, offset: number, prefixBits: number): [number, number] {
  const max = 2 ** prefixBits - 1;
  let value = block[offset]! & max;
  offset++;
  if (value < max) return [value, offset];
  let shift = 0;
  for (;;) {
    if (offset >= block.length || shift > 28) throw new HpackError("truncated integer");
    const byte = block[offset++]!;
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if ((byte & 0x80) === 0) return [value, offset];
  }
}

function writeInteger(firstBits: number, prefixBits: number, value: number): number[] {
  const max = 2 ** prefixBits - 1;
  if (value < max) return [firstBits | value];
  const bytes = [firstBits | max];
  value -= max;
  while (value >= 128) {
    bytes.push((value % 128) | 0x80);
    value = Math.floor(value / 128);
  }
  bytes.push(value);
  return bytes;
}

/** A string literal at `offset`: its decoded bytes and the offset after it. */
function readString(block: Buffer, offset: number): [Buffer, number] {
  if (offset >= block.length) throw new HpackError("truncated string");
  const huffmanCoded = (block[offset]! & 0x80) !== 0;
  const [length, start] = readInteger(block, offset, 7);
  const end = start + length;
  if (end > block.length) throw new HpackError("truncated string");
  const raw = block.subarray(start, end);
  return [huffmanCoded ? huffmanDecode(raw) : raw, end];
}

/** The `:authority` entry of HPACK's static table. */
const authorityIndex = 1;
const urlAuthority = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/([^/]*)\/?$/;

/** The header block with a URL-shaped `:authority` cut to host:port; the same block when there is none. */
export function rewriteAuthority(block: Buffer): Buffer {
  let offset = 0;
  while (offset < block.length) {
    const first = block[offset]!;
    const start = offset;
    if (first & 0x80) {
      offset = readInteger(block, offset, 7)[1]; // indexed field
      continue;
    }
    if ((first & 0xe0) === 0x20) {
      offset = readInteger(block, offset, 5)[1]; // dynamic table size update
      continue;
    }
    const prefixBits = first & 0x40 ? 6 : 4; // with incremental indexing, or without / never indexed
    const [nameIndex, afterIndex] = readInteger(block, offset, prefixBits);
    offset = nameIndex === 0 ? readString(block, afterIndex)[1] : afterIndex;
    const valueStart = offset;
    const [value, end] = readString(block, offset);
    offset = end;
    const match = nameIndex === authorityIndex ? urlAuthority.exec(value.toString("latin1")) : null;
    if (match === null) continue;
    const replacement = Buffer.from(match[1]!, "latin1");
    const field = Buffer.concat([block.subarray(start, valueStart), Buffer.from(writeInteger(0, 7, replacement.length)), replacement]);
    return Buffer.concat([block.subarray(0, start), field, rewriteAuthority(block.subarray(end))]);
  }
  return block;
}

const connectionPreface = 24;
const frameHeaderBytes = 9;
const frameTypeHeaders = 0x1;
const flagEndHeaders = 0x4;
const flagPadded = 0x8;
const flagPriority = 0x20;

/** Rewrites one HEADERS frame whose block is complete (END_HEADERS); other frames are returned as they are. */
function rewriteFrame(frame: Buffer): Buffer {
  const type = frame[3]!;
  const flags = frame[4]!;
  if (type !== frameTypeHeaders || (flags & flagEndHeaders) === 0) return frame;
  let offset = frameHeaderBytes;
  let end = frame.length;
  if (flags & flagPadded) {
    end -= frame[offset]!;
    offset++;
  }
  const priority = flags & flagPriority ? frame.subarray(offset, offset + 5) : Buffer.alloc(0);
  offset += priority.length;
  if (offset > end) return frame;
  const block = frame.subarray(offset, end);
  let rewritten: Buffer;
  try {
    rewritten = rewriteAuthority(block);
  } catch {
    return frame; // nghttp2 will judge a malformed block itself
  }
  if (rewritten === block) return frame;
  const header = Buffer.from(frame.subarray(0, frameHeaderBytes));
  const length = priority.length + rewritten.length;
  header.writeUIntBE(length, 0, 3);
  header[4] = flags & ~flagPadded;
  return Buffer.concat([header, priority, rewritten]);
}

/** Cuts incoming HTTP/2 bytes into frames and rewrites the HEADERS frames' `:authority`. */
export class AuthorityRewriter {
  private pending: Buffer = Buffer.alloc(0);
  private prefaceLeft = connectionPreface;

  push(chunk: Buffer): Buffer {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const out: Buffer[] = [];
    let offset = 0;
    if (this.prefaceLeft > 0) {
      const taken = Math.min(this.prefaceLeft, this.pending.length);
      out.push(this.pending.subarray(0, taken));
      this.prefaceLeft -= taken;
      offset = taken;
    }
    let rewritten = false;
    while (this.prefaceLeft === 0 && this.pending.length - offset >= frameHeaderBytes) {
      const length = this.pending.readUIntBE(offset, 3);
      const end = offset + frameHeaderBytes + length;
      if (end > this.pending.length) break;
      const frame = this.pending.subarray(offset, end);
      const result = rewriteFrame(frame);
      if (result !== frame) rewritten = true;
      out.push(result);
      offset = end;
    }
    const complete = this.pending.subarray(0, offset);
    this.pending = this.pending.subarray(offset);
    // Almost every chunk passes unchanged: hand it on without copying.
    if (!rewritten) return complete;
    return Buffer.concat(out);
  }
}

/** The connection as the HTTP/2 server should see it: incoming frames pass through the rewriter. */
export function withAuthorityRewriting(socket: net.Socket): Duplex {
  const rewriter = new AuthorityRewriter();
  // The HTTP/2 session would set this on a socket it owned; small frames must not wait for Nagle.
  socket.setNoDelay(true);
  const duplex = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _encoding, done) {
      socket.write(chunk, (error) => done(error ?? null));
    },
    // The HTTP/2 session hands over its output in several buffers at once (and
    // more while a write is in flight): one socket write for all of them.
    writev(chunks: Array<{ chunk: Buffer }>, done) {
      const data = chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((entry) => entry.chunk));
      socket.write(data, (error) => done(error ?? null));
    },
    final(done) {
      socket.end();
      done();
    },
    destroy(error, done) {
      socket.destroy(error ?? undefined);
      done(error);
    },
  });
  socket.on("data", (chunk: Buffer) => {
    const out = rewriter.push(chunk);
    if (out.length > 0 && !duplex.push(out)) socket.pause();
  });
  socket.on("end", () => duplex.push(null));
  socket.on("error", (error) => duplex.destroy(error));
  socket.on("close", () => duplex.destroy());
  return duplex;
}
