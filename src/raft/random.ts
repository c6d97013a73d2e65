/** Injected randomness: the core never calls Math.random. */
export interface RandomSource {
  /** A uniformly distributed integer in [0, bound). */
  nextInt(bound: number): number;
}

/**
 * A small seeded PRNG (xoshiro128**), deterministic across platforms; used by
 * the simulator and tests, and usable by the server seeded from crypto.
 */
export class SeededRandom implements RandomSource {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    // splitmix32 to spread the seed over the four words.
    let state = seed >>> 0;
    const next = (): number => {
      state = (state + 0x9e3779b9) >>> 0;
      let z = state;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
  }

  nextUint32(): number {
    const result = Math.imul(rotateLeft(Math.imul(this.b, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.b << 9) >>> 0;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotateLeft(this.d, 11);
    return result;
  }

  nextInt(bound: number): number {
    if (!(bound > 0) || !Number.isInteger(bound)) throw new RangeError(`bound must be a positive integer: ${bound}`);
    return Math.floor((this.nextUint32() / 4294967296) * bound);
  }

  /** True with probability `probability`. */
  chance(probability: number): boolean {
    return this.nextUint32() / 4294967296 < probability;
  }

  /** A new independent generator derived from this one. */
  fork(): SeededRandom {
    return new SeededRandom(this.nextUint32());
  }
}

function rotateLeft(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
