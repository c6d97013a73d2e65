/**
 * The MsgApp messages sent to one follower and not yet acknowledged, bounded in
 * count and in payload bytes: the flow-control window of replicate state.
 */
import { assert } from "./errors.js";

export class Inflights {
  /** Last index of each message in flight, oldest first, with its payload bytes. */
  private indexes: number[] = [];
  private sizes: number[] = [];
  private bytes = 0;

  constructor(readonly maxMessages: number, readonly maxBytes: number) {
    assert(maxMessages > 0, "inflights: max messages must be positive");
  }

  add(lastIndex: number, bytes: number): void {
    assert(!this.full(), "inflights: cannot add into a full window");
    const previous = this.indexes[this.indexes.length - 1];
    assert(previous === undefined || lastIndex >= previous, `inflights: index ${lastIndex} below ${previous}`);
    this.indexes.push(lastIndex);
    this.sizes.push(bytes);
    this.bytes += bytes;
  }

  /** Frees every message whose last index is at or below `index`. */
  freeLE(index: number): void {
    let count = 0;
    while (count < this.indexes.length && this.indexes[count]! <= index) {
      this.bytes -= this.sizes[count]!;
      count++;
    }
    if (count === 0) return;
    this.indexes = this.indexes.slice(count);
    this.sizes = this.sizes.slice(count);
  }

  full(): boolean {
    return this.indexes.length >= this.maxMessages || (this.maxBytes > 0 && this.bytes >= this.maxBytes);
  }

  count(): number {
    return this.indexes.length;
  }

  reset(): void {
    this.indexes = [];
    this.sizes = [];
    this.bytes = 0;
  }
}
