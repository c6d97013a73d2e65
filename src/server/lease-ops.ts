import { create } from "@bufbuild/protobuf";
import { InternalRaftRequestSchema } from "../gen/etcdserverpb/raft_internal_pb.js";
import {
  LeaseCheckpointRequestSchema,
  LeaseRevokeRequestSchema,
  LeaseTimeToLiveResponseSchema,
  ResponseHeaderSchema,
  type LeaseTimeToLiveRequest,
  type LeaseTimeToLiveResponse,
} from "../gen/etcdserverpb/rpc_pb.js";
import { leaseLimits } from "../lease/lessor.js";
import { keyToBytes } from "../mvcc/keys.js";
import * as errors from "./errors.js";
import type { EtcdServer } from "./member.js";
import { callLeader } from "./peer-endpoints.js";

/**
 * Leases as a cluster runs them: only the leader keeps expiry clocks, so
 * keep-alives and remaining TTLs asked of a follower are forwarded to the
 * leader over the peer port (following leader changes until the request
 * timeout), and only the leader proposes the revocation of expired leases.
 */
export class LeaseOps {
  constructor(private readonly server: EtcdServer) {}

  /** Proposes the revoke of leases that ran out, at most etcd's rate of revokes per second (called every `intervalMs`). */
  revokeExpired(intervalMs: number): void {
    if (this.server.stopped) return;
    const expired = this.server.lessor.takeExpired(Math.ceil((leaseLimits.revokesPerSecondMax * intervalMs) / 1000));
    for (const lease of expired) {
      this.server.leaseRevoke(create(LeaseRevokeRequestSchema, { ID: lease.id })).catch((error: unknown) => {
        if (error !== errors.ErrLeaseNotFound) this.server.logger.warn("failed to revoke an expired lease", { "lease-id": lease.id, error: String(error) });
      });
    }
  }

  /** Keeps a lease alive: its TTL in seconds, or 0 when it does not exist or has run out (what etcd answers). */
  renew(id: bigint): Promise<number> {
    if (this.server.raft.isLeader) return this.renewHere(id);
    return this.forwardToLeader("lease-renew", id).then((result) => (result as { ttl: number }).ttl);
  }

  /** Renews on this member, which must lead. */
  async renewHere(id: bigint): Promise<number> {
    if (!this.server.raft.isLeader) throw errors.ErrNotLeader;
    // Whatever the previous leader committed (a revoke, a grant) is applied first.
    await this.server.applied(this.server.raft.commitIndex);
    const renewed = this.server.lessor.renew(id);
    if (renewed === undefined) return 0;
    // A kept-alive lease starts over: the remaining TTL on record no longer holds.
    if (renewed.checkpointed) this.proposeCheckpoints([{ id, remainingTtlSeconds: 0 }]);
    return renewed.ttlSeconds;
  }

  /** A lease's remaining and granted TTL as the leader knows them; -1 when it does not exist. */
  async remainingHere(id: bigint): Promise<{ ttl: number; granted: number }> {
    if (!this.server.raft.isLeader) throw errors.ErrNotLeader;
    await this.server.linearizableRead();
    const lease = this.server.lessor.get(id);
    return lease === undefined ? { ttl: -1, granted: 0 } : { ttl: this.server.lessor.remainingSeconds(lease), granted: lease.ttlSeconds };
  }

  async timeToLive(request: LeaseTimeToLiveRequest): Promise<LeaseTimeToLiveResponse> {
    // On the leader, remainingHere reads linearizably itself; a follower reads
    // linearizably too, so that its keys list is as current as the leader's TTL.
    const remaining = this.server.raft.isLeader
      ? await this.remainingHere(request.ID)
      : await this.server.linearizableRead().then(async () => (await this.forwardToLeader("lease-ttl", request.ID)) as { ttl: number; granted: number });
    const lease = this.server.lessor.get(request.ID);
    if (remaining.ttl === -1 || lease === undefined) return create(LeaseTimeToLiveResponseSchema, { header: create(ResponseHeaderSchema), ID: request.ID, TTL: -1n });
    return create(LeaseTimeToLiveResponseSchema, {
      ID: lease.id,
      TTL: BigInt(remaining.ttl),
      grantedTTL: BigInt(remaining.granted),
      keys: request.keys ? [...lease.keys].sort().map((key) => keyToBytes(key)) : [],
    });
  }

  /** Records leases' remaining TTLs through the log, so that a new leader or a restart resumes them. */
  proposeCheckpoints(checkpoints: Array<{ id: bigint; remainingTtlSeconds: number }>): void {
    for (let first = 0; first < checkpoints.length; first += leaseLimits.checkpointsPerRequestMax) {
      const batch = checkpoints.slice(first, first + leaseLimits.checkpointsPerRequestMax);
      const leaseCheckpoint = create(LeaseCheckpointRequestSchema, { checkpoints: batch.map((checkpoint) => ({ ID: checkpoint.id, remainingTTL: BigInt(checkpoint.remainingTtlSeconds) })) });
      this.server.propose(create(InternalRaftRequestSchema, { leaseCheckpoint })).catch((error: unknown) => this.server.logger.warn("failed to checkpoint leases", { error: String(error) }));
    }
  }

  /** Asks the leader to do a leader-only operation, waiting for a leader (and following leader changes) until the request timeout. */
  private async forwardToLeader(operation: "lease-renew" | "lease-ttl", id: bigint): Promise<unknown> {
    const deadline = performance.now() + this.server.requestTimeoutMs;
    for (;;) {
      if (this.server.stopped) throw errors.ErrStopped;
      if (this.server.raft.isLeader) return operation === "lease-renew" ? { ttl: await this.renewHere(id) } : this.remainingHere(id);
      const leader = this.server.membership.get(this.server.leaderId);
      if (leader !== undefined) {
        try {
          return await callLeader(leader.peerUrls, operation, id, Math.max(1, deadline - performance.now()), this.server.config.peerTls);
        } catch (error) {
          // The leader moved on, or could not be reached: ask whoever leads next.
          const retry = error === errors.ErrTimeout || (error instanceof errors.EtcdError && error.message === errors.ErrNotLeader.message);
          if (!retry) throw error;
        }
      }
      if (performance.now() >= deadline) throw errors.ErrTimeout;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
