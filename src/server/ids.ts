import { createHash } from "node:crypto";

/**
 * A member's id as etcd derives it: the first 8 bytes (big-endian) of SHA-1 over
 * its sorted peer URLs joined, followed by the cluster token. Stable across
 * restarts and equal to real etcd's for the same flags.
 */
export function memberIdFromPeerUrls(peerUrls: readonly string[], clusterToken: string): bigint {
  const material = [...peerUrls].sort().join("") + clusterToken;
  return createHash("sha1").update(material).digest().readBigUInt64BE(0);
}

/** The cluster id: SHA-1 over the members' ids, sorted, each 8 bytes big-endian. */
export function clusterIdFromMembers(memberIds: readonly bigint[]): bigint {
  const sorted = [...memberIds].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const bytes = Buffer.alloc(8 * sorted.length);
  sorted.forEach((id, position) => bytes.writeBigUInt64BE(id, 8 * position));
  return createHash("sha1").update(bytes).digest().readBigUInt64BE(0);
}

/**
 * Unique 64-bit ids for requests and leases, as etcd's generator makes them:
 * the member's low 16 bits, then 40 bits of start time in ms, then a counter
 * of 8 bits that carries into the time part.
 */
export class IdGenerator {
  private next: bigint;
  private readonly prefix: bigint;

  constructor(memberId: bigint, nowMs: number) {
    this.prefix = (memberId & 0xffffn) << 48n;
    this.next = (BigInt(nowMs) & ((1n << 40n) - 1n)) << 8n;
  }

  generate(): bigint {
    this.next = (this.next + 1n) & ((1n << 48n) - 1n);
    return this.prefix | this.next;
  }
}
