/**
 * Keys travel as bytes on the wire and as latin1 strings inside the store (one
 * character per byte, so JavaScript string order is byte order).
 */
export function keyToString(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
}

export function keyToBytes(key: string): Buffer {
  return Buffer.from(key, "latin1");
}

/**
 * The store's form of a request's range end: undefined for a single key, "" for
 * every key from `key` on (etcd's "\0"), otherwise the exclusive end.
 */
export function rangeEndToString(rangeEnd: Uint8Array): string | undefined {
  if (rangeEnd.length === 0) return undefined;
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return "";
  return keyToString(rangeEnd);
}
