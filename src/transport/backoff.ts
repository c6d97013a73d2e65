/**
 * Timers reach the transport through this interface, so that tests (or a
 * simulator) can drive reconnection and timeouts without waiting.
 */
export interface Timers {
  setTimeout(callback: () => void, delayMs: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemTimers: Timers = {
  setTimeout: (callback, delayMs) => setTimeout(callback, delayMs),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/**
 * Exponential backoff without jitter (the transport is deterministic given its
 * timers): `minMs`, then doubling on each failure in a row, capped at `maxMs`;
 * `reset()` after a success starts again from `minMs`.
 */
export class Backoff {
  private failures = 0;

  constructor(
    private readonly minMs: number,
    private readonly maxMs: number,
  ) {
    if (!(minMs > 0 && minMs <= maxMs)) throw new RangeError(`backoff needs 0 < min (${minMs}) <= max (${maxMs})`);
  }

  /** The delay before the next attempt; each call counts one more failure. */
  nextDelayMs(): number {
    const exponent = Math.min(this.failures, 30);
    this.failures++;
    return Math.min(this.maxMs, this.minMs * 2 ** exponent);
  }

  reset(): void {
    this.failures = 0;
  }
}
