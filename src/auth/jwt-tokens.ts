import { createPublicKey } from "node:crypto";
import { readFile } from "node:fs/promises";
import { importPKCS8, importSPKI, jwtVerify, SignJWT, type CryptoKey, type KeyObject } from "jose";
import type { AuthInfo } from "./auth-store.js";

/** The signing methods etcd takes for JWT tokens (asymmetric ones: the members share the public key). */
export const jwtSignMethods = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"] as const;
export type JwtSignMethod = (typeof jwtSignMethods)[number];

/** etcd's --auth-token `jwt,pub-key=…,priv-key=…,sign-method=…,ttl=…`, parsed. */
export interface JwtOptions {
  signMethod: JwtSignMethod;
  publicKeyFile: string | undefined;
  privateKeyFile: string | undefined;
  ttlMs: number;
}

type Key = CryptoKey | KeyObject;

/**
 * etcd's JWT tokens: `{"username", "revision", "exp"}` signed with the
 * private key by the member that takes the Authenticate call, checked with the
 * public key by any member, without state. A token carries the auth revision
 * it was made at, so any later change of auth makes it "old" and clients sign
 * in again.
 */
export class JwtTokens {
  private constructor(
    private readonly options: JwtOptions,
    private readonly privateKey: Key | undefined,
    private readonly publicKey: Key | undefined,
  ) {}

  static async load(options: JwtOptions): Promise<JwtTokens> {
    const privatePem = options.privateKeyFile === undefined ? undefined : await readFile(options.privateKeyFile, "utf8");
    const publicPem = options.publicKeyFile === undefined ? undefined : await readFile(options.publicKeyFile, "utf8");
    const privateKey = privatePem === undefined ? undefined : await importPKCS8(privatePem, options.signMethod);
    // Without a public key file, the private key's public half checks tokens, as in etcd.
    const publicKey = publicPem !== undefined ? await importSPKI(publicPem, options.signMethod) : privatePem !== undefined ? createPublicKey(privatePem) : undefined;
    return new JwtTokens(options, privateKey, publicKey);
  }

  /** A signed token for `username` at auth revision `revision`; refused without a private key. */
  async sign(username: string, revision: number): Promise<string> {
    if (this.privateKey === undefined) throw new Error("jwt: this member has no private key to sign tokens with");
    return new SignJWT({ username, revision })
      .setProtectedHeader({ alg: this.options.signMethod })
      .setExpirationTime(Math.floor((Date.now() + this.options.ttlMs) / 1000))
      .sign(this.privateKey);
  }

  /** Who a token is for, if its signature (with the configured method only) and expiry hold. */
  async info(token: string): Promise<AuthInfo | undefined> {
    if (this.publicKey === undefined) return undefined;
    try {
      const { payload } = await jwtVerify(token, this.publicKey, { algorithms: [this.options.signMethod] });
      if (typeof payload["username"] !== "string" || typeof payload["revision"] !== "number" || payload.exp === undefined) return undefined;
      return { username: payload["username"], revision: payload["revision"] };
    } catch {
      return undefined;
    }
  }
}

/** Parses etcd's option string after `jwt,`; throws with etcd's words for what it refuses. */
export function parseJwtOptions(text: string, parseDurationMs: (text: string) => number): JwtOptions {
  const fields = new Map<string, string>();
  for (const item of text.split(",").slice(1)) {
    const separator = item.indexOf("=");
    if (separator <= 0) throw new Error(`invalid auth token option: ${item}`);
    fields.set(item.slice(0, separator), item.slice(separator + 1));
  }
  const signMethod = fields.get("sign-method") ?? "";
  if (!(jwtSignMethods as readonly string[]).includes(signMethod)) throw new Error(`invalid signing method: ${signMethod}`);
  const publicKeyFile = fields.get("pub-key");
  const privateKeyFile = fields.get("priv-key");
  if (publicKeyFile === undefined && privateKeyFile === undefined) throw new Error("jwt: no key files given (pub-key, priv-key)");
  const ttl = fields.get("ttl");
  return { signMethod: signMethod as JwtSignMethod, publicKeyFile, privateKeyFile, ttlMs: ttl === undefined ? 5 * 60_000 : parseDurationMs(ttl) };
}
