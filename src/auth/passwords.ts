import bcrypt from "bcrypt";

/**
 * bcrypt password hashes as etcd makes them (`$2a$`, with --bcrypt-cost), by
 * the native bcrypt library on libuv's thread pool: a hash takes tens of
 * milliseconds, which the event loop must not wait for. Passwords are hashed
 * before a change is proposed, so the log and the backend only hold hashes.
 */
export async function hashPassword(password: string, cost: number): Promise<string> {
  return bcrypt.hash(password, await bcrypt.genSalt(cost, "a"));
}

export async function passwordMatches(password: string, hashed: Uint8Array): Promise<boolean> {
  if (hashed.length === 0) return false;
  return bcrypt.compare(password, Buffer.from(hashed).toString()).catch(() => false);
}
