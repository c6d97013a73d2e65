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
  const parts: Buffer[] = [];
  if (event.type === "delete") parts.push(Buffer.from([eventTypeTag, deleteType]));
  parts.push(lengthDelimited(eventKvTag, encodeKeyValue(event.kv)));
  if (event.prevKv !== undefined) parts.push(lengthDelimited(eventPrevKvTag, encodeKeyValue(event.prevKv)));
  bytes = Buffer.concat(parts);
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

/** The `etcdserverpb.WatchResponse` bytes. */
export function encodeResponse(fields: EncodedResponseFields): Buffer {
  const parts: Buffer[] = [lengthDelimited(responseHeaderTag, fields.header)];
  if (fields.watchId !== 0) parts.push(varintField(watchIdTag, BigInt(fields.watchId)));
  if (fields.created === true) parts.push(Buffer.from([createdTag, 1]));
  if (fields.canceled === true) parts.push(Buffer.from([canceledTag, 1]));
  if (fields.compactRevision !== undefined && fields.compactRevision !== 0) parts.push(varintField(compactRevisionTag, BigInt(fields.compactRevision)));
  if (fields.cancelReason !== undefined && fields.cancelReason !== "") parts.push(lengthDelimited(cancelReasonTag, Buffer.from(fields.cancelReason, "utf8")));
  if (fields.fragment === true) parts.push(Buffer.from([fragmentTag, 1]));
  for (const event of fields.events) parts.push(lengthDelimited(eventsTag, event));
  return Buffer.concat(parts);
}

function lengthDelimited(tag: number, bytes: Uint8Array): Buffer {
  const prefix = Buffer.allocUnsafe(1 + varintLength(bytes.length));
  prefix[0] = tag;
  writeVarint(prefix, 1, BigInt(bytes.length));
  return Buffer.concat([prefix, bytes]);
}

/** An int64 field: negative values take ten bytes (two's complement), as protobuf writes them. */
function varintField(tag: number, value: bigint): Buffer {
  const unsigned = BigInt.asUintN(64, value);
  const bytes = Buffer.allocUnsafe(1 + bigVarintLength(unsigned));
  bytes[0] = tag;
  writeVarint(bytes, 1, unsigned);
  return bytes;
}

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
