import { MessageType, type Message } from "../raft/messages.js";

/** One follower's heartbeat round trips, as /v2/stats/leader reports them (milliseconds). */
export interface LatencyStats {
  currentMs: number;
  averageMs: number;
  deviationMs: number;
  minimumMs: number;
  maximumMs: number;
  successes: number;
  failures: number;
}

/**
 * The leader's latency to each follower: the time from a heartbeat to its
 * answer. Only the latest heartbeat per follower is timed.
 */
export class FollowerLatency {
  private readonly pending = new Map<bigint, number>();
  private readonly stats = new Map<bigint, LatencyStats & { sumSquaresMs: number }>();

  sent(messages: readonly Message[]): void {
    const now = performance.now();
    for (const message of messages) if (message.type === MessageType.MsgHeartbeat) this.pending.set(message.to, now);
  }

  received(message: Message): void {
    if (message.type !== MessageType.MsgHeartbeatResp) return;
    const sentAt = this.pending.get(message.from);
    if (sentAt === undefined) return;
    this.pending.delete(message.from);
    const latencyMs = performance.now() - sentAt;
    const stats = this.stats.get(message.from) ?? { currentMs: 0, averageMs: 0, deviationMs: 0, minimumMs: Number.MAX_VALUE, maximumMs: 0, successes: 0, failures: 0, sumSquaresMs: 0 };
    stats.successes++;
    stats.currentMs = latencyMs;
    stats.averageMs += (latencyMs - stats.averageMs) / stats.successes;
    stats.sumSquaresMs += latencyMs * latencyMs;
    stats.deviationMs = Math.sqrt(Math.max(0, stats.sumSquaresMs / stats.successes - stats.averageMs * stats.averageMs));
    stats.minimumMs = Math.min(stats.minimumMs, latencyMs);
    stats.maximumMs = Math.max(stats.maximumMs, latencyMs);
    this.stats.set(message.from, stats);
  }

  of(id: bigint): LatencyStats {
    const stats = this.stats.get(id);
    if (stats === undefined) return { currentMs: 0, averageMs: 0, deviationMs: 0, minimumMs: 0, maximumMs: 0, successes: 0, failures: 0 };
    const { sumSquaresMs: _, ...rest } = stats;
    return rest;
  }
}
