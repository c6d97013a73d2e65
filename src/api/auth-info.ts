import type { AuthInfo } from "../auth/auth-store.js";
import * as errors from "../server/errors.js";
import type { EtcdServer } from "../server/member.js";
import { clientCommonName, type ClientCallSource } from "./client-identity.js";

/**
 * Who a call runs as, as etcd reads it: the `token` metadata (the gateway's
 * `Authorization` header), whose user must still hold a valid token; else,
 * with --client-cert-auth, the common name of the verified client
 * certificate; else nobody, which auth refuses once it is on. The revision is
 * the auth store's when the call was read (a JWT token's own, when it was
 * made), so that a change of auth since makes the call retry.
 */
export async function authInfoOf(server: EtcdServer, call: unknown): Promise<AuthInfo> {
  const revision = server.authStore.currentRevision;
  const token = tokenOf(call);
  if (token !== undefined) {
    if (server.jwtTokens !== undefined) {
      const info = await server.jwtTokens.info(token);
      if (info === undefined) throw errors.ErrInvalidAuthToken;
      return info;
    }
    const username = server.authTokens.username(token);
    if (username === undefined) throw errors.ErrInvalidAuthToken;
    return { username, revision };
  }
  if (server.config.clientTls?.clientCertAuth === true) {
    // The gateway and the call admission hand their connection's request or stream along; a gRPC call is its own source.
    const source = (call as { source?: ClientCallSource }).source ?? (call as ClientCallSource);
    const commonName = clientCommonName(source);
    if (commonName !== undefined) return { username: commonName, revision };
  }
  return { username: "", revision };
}

function tokenOf(call: unknown): string | undefined {
  const metadata = (call as { metadata?: unknown } | undefined)?.metadata;
  if (metadata === undefined || metadata === null) return undefined;
  const read = (name: string): unknown => (typeof (metadata as { get?: unknown }).get === "function" ? (metadata as { get(key: string): unknown[] }).get(name)[0] : (metadata as Record<string, unknown>)[name]);
  const token = read("token") ?? read("authorization");
  return typeof token === "string" && token !== "" ? token : undefined;
}
