import type { Backend } from "../mvcc/backend.js";
import type { LeaseAttachments } from "../mvcc/lessor.js";

export interface Lease {
  id: bigint;
  ttlSeconds: number;
  keys: Set<string>;
  /** When the lease runs out, on this member's monotonic clock; Infinity when this member does not expire leases. */
  expiresAtMs: number;
  /** An expired lease whose revoke was proposed is not proposed again before this time. */
  retryRevokeAtMs: number;
  /** The TTL left at the last checkpoint, in seconds; 0 when none is recorded. */
  remainingTtlSeconds: number;
}

/** Limits of the lease module, as etcd's lessor has them. */
export const leaseLimits = {
  /** etcd's largest lease TTL: 9,000,000,000 seconds. */
  ttlSecondsMax: 9_000_000_000,
  /** Expired leases revoked per second at most, so that a mass expiry cannot starve writes. */
  revokesPerSecondMax: 1000,
  /** How long to wait before proposing the revoke of an expired lease again. */
  revokeRetryMs: 3000,
  /** Leases per checkpoint request, as etcd batches them. */
  checkpointsPerRequestMax: 1000,
} as const;

/**
 * The leases and the keys attached to them. Grants and revokes change the set
 * only through the apply of log entries, and leases persist in the backend's
 * `lease` bucket as etcd's leasepb.Lease (ID = 1, TTL = 2).
 *
 * Time never enters the log: only the member that expires leases (the leader;
 * a single member always is) keeps expiry times, measured as durations on its
 * own monotonic clock. When it takes that role it first extends every lease by
 * its full TTL, so that no lease expires for time it did not watch.
 */
export class Lessor implements LeaseAttachments {
  private readonly leases = new Map<bigint, Lease>();
  private readonly keyLeases = new Map<string, bigint>();
  private primary = false;

  constructor(
    private readonly backend: Backend,
    private readonly clockMs: () => number = () => performance.now(),
  ) {
    this.load();
  }

  private load(): void {
    this.backend.forEach("lease", (_, value) => {
      const { id, ttlSeconds, remainingTtlSeconds } = decodeLease(value);
      this.leases.set(id, { id, ttlSeconds, keys: new Set(), expiresAtMs: Infinity, retryRevokeAtMs: 0, remainingTtlSeconds });
    });
  }

  /** Forgets every lease and loads them again from the backend (replaced by a snapshot); the store attaches keys again. */
  reload(): void {
    this.leases.clear();
    this.keyLeases.clear();
    this.load();
    if (this.primary) this.promote();
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

  /** Starts expiring leases, giving each its checkpointed remaining TTL, or else its full TTL, from now first. */
  promote(): void {
    this.primary = true;
    const now = this.clockMs();
    for (const lease of this.leases.values()) {
      lease.expiresAtMs = now + (lease.remainingTtlSeconds > 0 ? lease.remainingTtlSeconds : lease.ttlSeconds) * 1000;
      lease.retryRevokeAtMs = 0;
    }
  }

  /** Stops expiring leases (another member does it now). */
  demote(): void {
    this.primary = false;
    for (const lease of this.leases.values()) lease.expiresAtMs = Infinity;
  }

  /** Inside the backend write of the grant's entry. */
  grant(id: bigint, ttlSeconds: number): Lease {
    if (this.leases.has(id)) throw new Error(`lease ${id} granted twice`);
    const expiresAtMs = this.primary ? this.clockMs() + ttlSeconds * 1000 : Infinity;
    const lease: Lease = { id, ttlSeconds, keys: new Set(), expiresAtMs, retryRevokeAtMs: 0, remainingTtlSeconds: 0 };
    this.leases.set(id, lease);
    this.backend.put("lease", leaseKey(id), encodeLease(lease));
    return lease;
  }

  /** Inside the backend write of the checkpoint's entry: records the TTL a lease has left (0 clears it). */
  checkpoint(id: bigint, remainingTtlSeconds: number): void {
    const lease = this.leases.get(id);
    if (lease === undefined) return;
    lease.remainingTtlSeconds = remainingTtlSeconds;
    this.backend.put("lease", leaseKey(id), encodeLease(lease));
  }

  /** What a checkpoint records for each lease now: the whole seconds left, rounded up as etcd does. */
  checkpoints(): Array<{ id: bigint; remainingTtlSeconds: number }> {
    if (!this.primary) return [];
    const now = this.clockMs();
    return [...this.leases.values()]
      .filter((lease) => lease.expiresAtMs > now)
      .map((lease) => ({ id: lease.id, remainingTtlSeconds: Math.ceil((lease.expiresAtMs - now) / 1000) }));
  }

  /** Forgets the lease; the caller deletes its keys in the same transaction. */
  remove(id: bigint): void {
    const lease = this.leases.get(id);
    if (lease === undefined) return;
    for (const key of lease.keys) this.keyLeases.delete(key);
    this.leases.delete(id);
    this.backend.delete("lease", leaseKey(id));
  }

  /**
   * Restarts the lease's TTL; undefined when it does not exist or has already
   * run out. `checkpointed` says that a remaining TTL is on record, which the
   * caller clears through the log, as etcd does.
   */
  renew(id: bigint): { ttlSeconds: number; checkpointed: boolean } | undefined {
    const lease = this.leases.get(id);
    if (lease === undefined) return undefined;
    const now = this.clockMs();
    if (lease.expiresAtMs <= now) return undefined;
    if (this.primary) lease.expiresAtMs = now + lease.ttlSeconds * 1000;
    return { ttlSeconds: lease.ttlSeconds, checkpointed: lease.remainingTtlSeconds > 0 };
  }

  /** Whole seconds left, truncated as etcd does; the full TTL while this member does not expire leases. */
  remainingSeconds(lease: Lease): number {
    if (lease.expiresAtMs === Infinity) return lease.ttlSeconds;
    return Math.trunc((lease.expiresAtMs - this.clockMs()) / 1000);
  }

  /**
   * Leases that have run out and whose revoke should be proposed now, at most
   * `max`; each is not offered again for a retry interval, in case its revoke is lost.
   */
  takeExpired(max: number): Lease[] {
    const now = this.clockMs();
    const expired: Lease[] = [];
    for (const lease of this.leases.values()) {
      if (expired.length >= max) break;
      if (lease.expiresAtMs > now || lease.retryRevokeAtMs > now) continue;
      lease.retryRevokeAtMs = now + leaseLimits.revokeRetryMs;
      expired.push(lease);
    }
    return expired;
  }
}

function leaseKey(id: bigint): Buffer {
  const key = Buffer.allocUnsafe(8);
  key.writeBigInt64BE(id);
  return key;
}

/** etcd's leasepb.Lease: ID = 1, TTL = 2, RemainingTTL = 3 (left out when 0). */
function encodeLease(lease: Lease): Buffer {
  const bytes: number[] = [0x08, ...varint(BigInt.asUintN(64, lease.id)), 0x10, ...varint(BigInt.asUintN(64, BigInt(lease.ttlSeconds)))];
  if (lease.remainingTtlSeconds !== 0) bytes.push(0x18, ...varint(BigInt(lease.remainingTtlSeconds)));
  return Buffer.from(bytes);
}

function decodeLease(bytes: Uint8Array): { id: bigint; ttlSeconds: number; remainingTtlSeconds: number } {
  let id = 0n;
  let ttl = 0n;
  let remaining = 0n;
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
    else if (tag === 0x18) remaining = BigInt.asIntN(64, value);
  }
  return { id, ttlSeconds: Number(ttl), remainingTtlSeconds: Number(remaining) };
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
