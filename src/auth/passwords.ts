import { hash, verify } from "@node-rs/bcrypt";

/**
 * bcrypt password hashes, as etcd makes them ($2a$, with --bcrypt-cost), on
 * the native library's own threads: a hash takes tens of milliseconds, which
 * the event loop must not wait for. Passwords are hashed before a change is
 * proposed, so the log and the backend only ever hold hashes.
 */
export function hashPassword(password: string, cost: number): Promise<string> {
  return hash(password, { cost, version: "2a" });
}

export function passwordMatches(password: string, hashed: Uint8Array): Promise<boolean> {
  if (hashed.length === 0) return Promise.resolve(false);
  return verify(password, Buffer.from(hashed).toString()).catch(() => false);
}
