import type { Backend } from "../mvcc/backend.js";
import type { LeaseAttachments } from "../mvcc/lessor.js";

export interface Lease {
  id: bigint;
  ttlSeconds: number;
  keys: Set<string>;
}

/** etcd's largest lease TTL: 9,000,000,000 seconds. */
export const maxLeaseTtlSeconds = 9_000_000_000;

/**
 * The leases and the keys attached to them. Grants and revokes change it only
 * through the apply of log entries; leases persist in the backend's `lease`
 * bucket as etcd's leasepb.Lease (ID = 1, TTL = 2).
 */
export class Lessor implements LeaseAttachments {
  private readonly leases = new Map<bigint, Lease>();
  private readonly keyLeases = new Map<string, bigint>();

  constructor(private readonly backend: Backend) {
    backend.forEach("lease", (_, value) => {
      const { id, ttlSeconds } = decodeLease(value);
      this.leases.set(id, { id, ttlSeconds, keys: new Set() });
    });
  }

  exists(id: bigint): boolean {
    return this.leases.has(id);
  }

  get(id: bigint): Lease | undefined {
    return this.leases.get(id);
  }

  all(): Lease[] {
    return [...this.leases.values()];
  }

  leaseOf(key: string): bigint {
    return this.keyLeases.get(key) ?? 0n;
  }

  attach(id: bigint, key: string): void {
    const lease = this.leases.get(id);
    if (lease === undefined) throw new Error(`attach to missing lease ${id}`);
    lease.keys.add(key);
    this.keyLeases.set(key, id);
  }

  detach(id: bigint, key: string): void {
    this.leases.get(id)?.keys.delete(key);
    if (this.keyLeases.get(key) === id) this.keyLeases.delete(key);
  }

  /** Inside the backend write of the grant's entry. */
  grant(id: bigint, ttlSeconds: number): Lease {
    if (this.leases.has(id)) throw new Error(`lease ${id} granted twice`);
    const lease: Lease = { id, ttlSeconds, keys: new Set() };
    this.leases.set(id, lease);
    this.backend.put("lease", leaseKey(id), encodeLease(id, ttlSeconds));
    return lease;
  }

  /** Forgets the lease; the caller deletes its keys in the same transaction. */
  remove(id: bigint): void {
    const lease = this.leases.get(id);
    if (lease === undefined) return;
    for (const key of lease.keys) this.keyLeases.delete(key);
    this.leases.delete(id);
    this.backend.delete("lease", leaseKey(id));
  }
}

function leaseKey(id: bigint): Buffer {
  const key = Buffer.allocUnsafe(8);
  key.writeBigInt64BE(id);
  return key;
}

function encodeLease(id: bigint, ttlSeconds: number): Buffer {
  const bytes: number[] = [0x08, ...varint(BigInt.asUintN(64, id)), 0x10, ...varint(BigInt.asUintN(64, BigInt(ttlSeconds)))];
  return Buffer.from(bytes);
}

function decodeLease(bytes: Uint8Array): { id: bigint; ttlSeconds: number } {
  let id = 0n;
  let ttl = 0n;
  let offset = 0;
  while (offset < bytes.length) {
    const tag = bytes[offset++]!;
    let value = 0n;
    let shift = 0n;
    for (;;) {
      const byte = bytes[offset++]!;
      value |= BigInt(byte & 0x7f) << shift;
      shift += 7n;
      if (byte < 0x80) break;
    }
    if (tag === 0x08) id = BigInt.asIntN(64, value);
    else if (tag === 0x10) ttl = BigInt.asIntN(64, value);
  }
  return { id, ttlSeconds: Number(ttl) };
}

function varint(value: bigint): number[] {
  const out: number[] = [];
  while (value >= 0x80n) {
    out.push(Number(value & 0x7fn) | 0x80);
    value >>= 7n;
  }
  out.push(Number(value));
  return out;
}
