/** A small seeded PRNG (mulberry32): uniform in [0, 1); the same seed gives the same sequence everywhere, so a failure replays exactly. */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer in [0, bound). */
export function below(random: () => number, bound: number): number {
  return Math.floor(random() * bound);
}

/** The seeded PRNG with helpers for picking. */
export class Random {
  /** Uniform in [0, 1). */
  readonly next: () => number;

  constructor(readonly seed: number) {
    this.next = prng(seed);
  }

  /** Integer in [low, high]. */
  int(low: number, high: number): number {
    return low + Math.floor(this.next() * (high - low + 1));
  }

  chance(probability: number): boolean {
    return this.next() < probability;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
}
