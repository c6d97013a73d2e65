import { encodeKeyValue } from "../key-value.js";
import type { WatchEvent } from "./watcher.js";

/**
 * Watch responses encoded by hand, as etcd's protobuf encoding writes them
 * (fields in number order, zero values left out): an event is encoded once
 * and its bytes shared by every watcher that receives it, and a response is a
 * few bytes of its own around them. Equal, byte for byte, to what protobuf-es
 * writes for `etcdserverpb.WatchResponse` and `mvccpb.Event`.
 */

const eventTypeTag = 0x08; // mvccpb.Event.type, varint
const eventKvTag = 0x12; // mvccpb.Event.kv
const eventPrevKvTag = 0x1a; // mvccpb.Event.prev_kv
const deleteType = 1;

const responseHeaderTag = 0x0a; // WatchResponse.header
const watchIdTag = 0x10;
const createdTag = 0x18;
const canceledTag = 0x20;
const compactRevisionTag = 0x28;
const cancelReasonTag = 0x32;
const fragmentTag = 0x38;
const eventsTag = 0x5a; // WatchResponse.events, field 11

const encodedEvents = new WeakMap<WatchEvent, Buffer>();

/** The `mvccpb.Event` bytes of an event, computed once per event object. */
export function encodeEvent(event: WatchEvent): Buffer {
  let bytes = encodedEvents.get(event);
  if (bytes !== undefined) return bytes;
  const kv = encodeKeyValue(event.kv);
  const previous = event.prevKv === undefined ? undefined : encodeKeyValue(event.prevKv);
  let length = lengthDelimitedBytes(kv.length);
  if (event.type === "delete") length += 2;
  if (previous !== undefined) length += lengthDelimitedBytes(previous.length);
  bytes = Buffer.allocUnsafe(length);
  let offset = 0;
  if (event.type === "delete") {
    bytes[offset++] = eventTypeTag;
    bytes[offset++] = deleteType;
  }
  offset = writeLengthDelimited(bytes, offset, eventKvTag, kv);
  if (previous !== undefined) offset = writeLengthDelimited(bytes, offset, eventPrevKvTag, previous);
  if (offset !== length) throw new Error("event encoded length mismatch");
  encodedEvents.set(event, bytes);
  return bytes;
}

/** The fields of a WatchResponse, with its header and events already encoded. */
export interface EncodedResponseFields {
  header: Uint8Array;
  watchId: number;
  created?: boolean;
  canceled?: boolean;
  compactRevision?: number;
  cancelReason?: string;
  fragment?: boolean;
  events: readonly Buffer[];
}

/** Bytes a response takes besides its events. */
export function responseOverheadBytes(fields: EncodedResponseFields): number {
  return encodeResponse({ ...fields, events: [] }).length;
}

/** Bytes one encoded event adds to a response. */
export function eventFieldBytes(event: Buffer): number {
  return 1 + varintLength(event.length) + event.length;
}

/** The `etcdserverpb.WatchResponse` bytes, written into one buffer. */
export function encodeResponse(fields: EncodedResponseFields): Buffer {
  const watchId = fields.watchId === 0 ? undefined : BigInt.asUintN(64, BigInt(fields.watchId));
  const compactRevision = fields.compactRevision === undefined || fields.compactRevision === 0 ? undefined : BigInt.asUintN(64, BigInt(fields.compactRevision));
  const reason = fields.cancelReason === undefined || fields.cancelReason === "" ? undefined : Buffer.from(fields.cancelReason, "utf8");
  let length = lengthDelimitedBytes(fields.header.length);
  if (watchId !== undefined) length += 1 + bigVarintLength(watchId);
  if (fields.created === true) length += 2;
  if (fields.canceled === true) length += 2;
  if (compactRevision !== undefined) length += 1 + bigVarintLength(compactRevision);
  if (reason !== undefined) length += lengthDelimitedBytes(reason.length);
  if (fields.fragment === true) length += 2;
  for (const event of fields.events) length += lengthDelimitedBytes(event.length);
  const out = Buffer.allocUnsafe(length);
  let offset = writeLengthDelimited(out, 0, responseHeaderTag, fields.header);
  if (watchId !== undefined) offset = writeVarint(out, writeTag(out, offset, watchIdTag), watchId);
  if (fields.created === true) offset = writeTrue(out, offset, createdTag);
  if (fields.canceled === true) offset = writeTrue(out, offset, canceledTag);
  if (compactRevision !== undefined) offset = writeVarint(out, writeTag(out, offset, compactRevisionTag), compactRevision);
  if (reason !== undefined) offset = writeLengthDelimited(out, offset, cancelReasonTag, reason);
  if (fields.fragment === true) offset = writeTrue(out, offset, fragmentTag);
  for (const event of fields.events) offset = writeLengthDelimited(out, offset, eventsTag, event);
  if (offset !== length) throw new Error("watch response encoded length mismatch");
  return out;
}

function lengthDelimitedBytes(length: number): number {
  return 1 + varintLength(length) + length;
}

function writeTag(out: Buffer, offset: number, tag: number): number {
  out[offset] = tag;
  return offset + 1;
}

function writeTrue(out: Buffer, offset: number, tag: number): number {
  out[offset] = tag;
  out[offset + 1] = 1;
  return offset + 2;
}

function writeLengthDelimited(out: Buffer, offset: number, tag: number, bytes: Uint8Array): number {
  out[offset++] = tag;
  let length = bytes.length;
  while (length >= 0x80) {
    out[offset++] = (length & 0x7f) | 0x80;
    length >>>= 7;
  }
  out[offset++] = length;
  out.set(bytes, offset);
  return offset + bytes.length;
}

/** A varint of an int64 taken as unsigned: negative values take ten bytes (two's complement), as protobuf writes them. */
function writeVarint(out: Buffer, offset: number, value: bigint): number {
  let rest = value;
  while (rest >= 0x80n) {
    out[offset++] = Number(rest & 0x7fn) | 0x80;
    rest >>= 7n;
  }
  out[offset++] = Number(rest);
  return offset;
}

function bigVarintLength(value: bigint): number {
  let length = 1;
  for (let rest = value; rest >= 0x80n; rest >>= 7n) length++;
  return length;
}

function varintLength(value: number): number {
  let length = 1;
  for (let rest = value; rest >= 0x80; rest = Math.floor(rest / 128)) length++;
  return length;
}
