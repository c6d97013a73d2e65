import { randomInt } from "node:crypto";

const tokenAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const tokenPrefixLength = 16;
/** Expired tokens are swept when this many have been assigned since the last sweep. */
const sweepEveryAssigned = 1024;

/**
 * etcd's simple tokens: `<16 random letters>.<index of the Authenticate
 * entry>`, kept in memory by every member (each applies the entry that
 * assigns it), valid while used within the TTL (--auth-token-ttl), and
 * dropped when their user is deleted or changes password, or auth is
 * disabled. They are not signed: etcd logs a warning for them, as tetcd does.
 */
export class SimpleTokens {
  private readonly tokens = new Map<string, { username: string; expiresAtMs: number }>();
  private assignedSinceSweep = 0;

  constructor(
    private readonly ttlMs: number,
    private readonly nowMs: () => number = () => performance.now(),
  ) {}

  /** The random part of a token, chosen by the member that takes the Authenticate call. */
  static prefix(): string {
    let prefix = "";
    for (let index = 0; index < tokenPrefixLength; index++) prefix += tokenAlphabet[randomInt(tokenAlphabet.length)];
    return prefix;
  }

  assign(prefix: string, index: number, username: string): string {
    const token = `${prefix}.${index}`;
    this.tokens.set(token, { username, expiresAtMs: this.nowMs() + this.ttlMs });
    if (++this.assignedSinceSweep >= sweepEveryAssigned) this.sweep();
    return token;
  }

  /** The token's user, its TTL renewed; undefined for an unknown or expired token. */
  username(token: string): string | undefined {
    const entry = this.tokens.get(token);
    if (entry === undefined) return undefined;
    const now = this.nowMs();
    if (entry.expiresAtMs <= now) {
      this.tokens.delete(token);
      return undefined;
    }
    entry.expiresAtMs = now + this.ttlMs;
    return entry.username;
  }

  invalidateUser(username: string): void {
    for (const [token, entry] of this.tokens) if (entry.username === username) this.tokens.delete(token);
  }

  clear(): void {
    this.tokens.clear();
  }

  private sweep(): void {
    this.assignedSinceSweep = 0;
    const now = this.nowMs();
    for (const [token, entry] of this.tokens) if (entry.expiresAtMs <= now) this.tokens.delete(token);
  }
}
