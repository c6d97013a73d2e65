import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeMessage, encodeMessage } from "../../src/raft/index.js";
import { encodeFrame, FrameReader, FrameTooLargeError, frameHeaderBytes, TruncatedFrameError } from "../../src/transport/index.js";
import { numbered } from "./harness.js";

const payloads = [Buffer.from("first"), Buffer.alloc(0), Buffer.from("a somewhat longer third payload"), Buffer.from([0, 1, 2, 255])];
const stream = Buffer.concat(payloads.map(encodeFrame));
const asText = (frames: Uint8Array[]) => frames.map((frame) => Buffer.from(frame).toString("hex"));

test("a frame is a u32 big-endian length and the payload", () => {
  const frame = encodeFrame(Buffer.from("abc"));
  assert.deepEqual([...frame], [0, 0, 0, 3, 0x61, 0x62, 0x63]);
  assert.equal(frameHeaderBytes, 4);
});

test("frames split at every byte boundary reassemble to the same payloads", () => {
  for (let split = 0; split <= stream.length; split++) {
    const reader = new FrameReader(1024);
    const frames = [...reader.push(stream.subarray(0, split)), ...reader.push(stream.subarray(split))];
    assert.deepEqual(asText(frames), asText(payloads), `split at ${split}`);
    assert.equal(reader.pendingBytes, 0);
    reader.end();
  }
});

test("frames split at every pair of boundaries, and one byte at a time, reassemble", () => {
  for (let first = 0; first <= stream.length; first++) {
    for (let second = first; second <= stream.length; second++) {
      const reader = new FrameReader(1024);
      const frames = [stream.subarray(0, first), stream.subarray(first, second), stream.subarray(second)].flatMap((chunk) => reader.push(chunk));
      assert.deepEqual(asText(frames), asText(payloads), `split at ${first} and ${second}`);
    }
  }
  const reader = new FrameReader(1024);
  const frames = [...stream].flatMap((byte) => reader.push(Uint8Array.of(byte)));
  assert.deepEqual(asText(frames), asText(payloads));
});

test("raft messages survive framing split anywhere", () => {
  const messages = [numbered(1n, 2n, 7, 40), numbered(1n, 2n, 8, 0)];
  const bytes = Buffer.concat(messages.map((m) => encodeFrame(encodeMessage(m))));
  for (let split = 0; split <= bytes.length; split++) {
    const reader = new FrameReader(1024);
    const decoded = [...reader.push(bytes.subarray(0, split)), ...reader.push(bytes.subarray(split))].map(decodeMessage);
    assert.deepEqual(decoded, messages, `split at ${split}`);
  }
});

test("a large frame in many small chunks is reassembled whole", () => {
  const payload = Buffer.alloc(3 * 1024 * 1024 + 17);
  for (let index = 0; index < payload.length; index++) payload[index] = (index * 31) & 0xff;
  const frame = encodeFrame(payload);
  const reader = new FrameReader(payload.length);
  const frames: Uint8Array[] = [];
  for (let offset = 0; offset < frame.length; offset += 16 * 1024 + 3) frames.push(...reader.push(frame.subarray(offset, offset + 16 * 1024 + 3)));
  assert.equal(frames.length, 1);
  assert.ok(Buffer.from(frames[0]!).equals(payload));
});

test("a length beyond the limit is refused as soon as the header is in", () => {
  const reader = new FrameReader(4);
  assert.deepEqual(asText(reader.push(encodeFrame(Buffer.from("four")))), [Buffer.from("four").toString("hex")]);
  assert.throws(() => reader.push(encodeFrame(Buffer.from("fives")).subarray(0, 4)), FrameTooLargeError);
});

test("a stream that ends inside a frame is reported truncated", () => {
  const reader = new FrameReader(1024);
  reader.push(stream.subarray(0, 6));
  assert.throws(() => reader.end(), TruncatedFrameError);
});
