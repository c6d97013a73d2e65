import * as http from "node:http";
import type http2 from "node:http2";
import type * as grpc from "@grpc/grpc-js";
import { ServerCall } from "./grpc-server.js";

/**
 * Who a client is, as its verified TLS certificate says: the common name of
 * the certificate's subject. With `--client-cert-auth` and auth enabled, etcd
 * takes that name as the user of every call on the connection (when the call
 * carries no token); this module is where tetcd's auth can ask for it.
 *
 * The name is recorded when the TLS handshake is over and the certificate
 * verified: on the TLS socket (which HTTP/1.1 requests hold) and on the HTTP/2
 * session made for it (which gRPC streams hold); see src/api/server.ts. It is
 * read back here from any of the things a handler holds.
 */
const commonNameKey = Symbol("clientCommonName");

interface Marked {
  [commonNameKey]?: string | undefined;
}

/** Records the verified common name of a connection: its TLS socket, or the HTTP/2 session serving it. */
export function recordClientCommonName(connection: object, commonName: string | undefined): void {
  Object.defineProperty(connection, commonNameKey, { value: commonName, enumerable: false });
}

/** What a handler holds: a gRPC call (tetcd's own, or typed as grpc-js's), an HTTP/2 stream, or an HTTP/1.1 request of the gateway. */
export type ClientCallSource =
  | ServerCall
  | grpc.ServerUnaryCall<unknown, unknown>
  | grpc.ServerWritableStream<unknown, unknown>
  | grpc.ServerDuplexStream<unknown, unknown>
  | http2.ServerHttp2Stream
  | http.IncomingMessage;

/**
 * The common name (CN) of the verified client certificate of the connection
 * that `source` arrived on; undefined on a plain-text connection, when the
 * client presented no certificate, or when it was not verified (without
 * `--client-cert-auth` or `--trusted-ca-file` none is asked for). An empty CN
 * is undefined too. Whether auth should use the name (etcd does only with
 * `--client-cert-auth` on) is the caller's decision.
 */
export function clientCommonName(source: ClientCallSource): string | undefined {
  if (source instanceof http.IncomingMessage) return (source.socket as Marked | null)?.[commonNameKey];
  const stream = source instanceof ServerCall ? source.stream : "session" in source ? source : undefined;
  return (stream?.session as Marked | undefined)?.[commonNameKey];
}
