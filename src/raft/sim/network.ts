/**
 * The simulated network: every message is delayed, and may be lost, duplicated
 * or reordered (by independent random delays); partitions block directed links.
 */
import type { Message, NodeId } from "../messages.js";
import type { SeededRandom } from "../random.js";

export interface NetworkFaults {
  lossProbability: number;
  duplicateProbability: number;
  minDelayTicks: number;
  maxDelayTicks: number;
}

export const quietNetwork: NetworkFaults = { lossProbability: 0, duplicateProbability: 0, minDelayTicks: 1, maxDelayTicks: 2 };

interface InFlight {
  deliverAt: number;
  sequence: number;
  message: Message;
}

export class SimulatedNetwork {
  private queue: InFlight[] = [];
  private sequence = 0;
  /** Directed links that drop everything: key `${from}>${to}`. */
  private blocked = new Set<string>();
  faults: NetworkFaults = quietNetwork;

  constructor(private readonly random: SeededRandom) {}

  /** Queues a message; false if it was dropped at once. */
  send(message: Message, now: number): boolean {
    if (this.blocked.has(`${message.from}>${message.to}`)) return false;
    if (this.random.chance(this.faults.lossProbability)) return false;
    const copies = this.random.chance(this.faults.duplicateProbability) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const span = this.faults.maxDelayTicks - this.faults.minDelayTicks + 1;
      const deliverAt = now + this.faults.minDelayTicks + this.random.nextInt(span);
      this.queue.push({ deliverAt, sequence: this.sequence++, message });
    }
    return true;
  }

  /** Messages due by `now`, in delivery order; blocked links drop at delivery too. */
  deliverable(now: number): { message: Message; blocked: boolean }[] {
    const due: InFlight[] = [];
    const later: InFlight[] = [];
    for (const item of this.queue) (item.deliverAt <= now ? due : later).push(item);
    this.queue = later;
    due.sort((a, b) => a.deliverAt - b.deliverAt || a.sequence - b.sequence);
    return due.map((item) => ({ message: item.message, blocked: this.blocked.has(`${item.message.from}>${item.message.to}`) }));
  }

  block(from: NodeId, to: NodeId): void {
    this.blocked.add(`${from}>${to}`);
  }

  heal(): void {
    this.blocked.clear();
  }

  blockedLinks(): string[] {
    return [...this.blocked].sort();
  }

  inFlightCount(): number {
    return this.queue.length;
  }
}
