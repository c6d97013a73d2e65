import http2 from "node:http2";
import type net from "node:net";
import { TransportError } from "./errors.js";
import { cipherOptions, resolvePeerTls, type PeerTlsCredentials, type PeerTlsOptions } from "./tls.js";

/**
 * The one place where peer servers are created and peer connections opened;
 * nothing else in the transport depends on the scheme.
 *
 * - `http:` is h2c (HTTP/2 in clear text), with or without TLS configured; as
 *   in etcd, the peer certificate is then simply not used on that URL.
 * - `https:` is h2 over TLS (ALPN `h2`). Listening on it needs the peer TLS
 *   credentials (etcd: "KeyFile and CertFile are not presented" otherwise);
 *   a listener verifies the certificates of peers dialling in when
 *   `verifyClients`. Dialling it presents the peer certificate as the client
 *   certificate and verifies the server against the trusted CA; without TLS
 *   configured, the connection is still TLS, verified against Node's default
 *   roots and with no client certificate (what etcd does with no peer TLS).
 */
function checkScheme(url: URL): void {
  if (url.protocol === "http:" || url.protocol === "https:") return;
  throw new TransportError("bad_peer_url", `peer URL ${url.href}: scheme must be http or https`);
}

/** Parses and checks a peer URL (`http://host:port` or `https://host:port`). */
export function parsePeerUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TransportError("bad_peer_url", `peer URL ${JSON.stringify(text)} is not a URL`);
  }
  checkScheme(url);
  if (url.port === "") throw new TransportError("bad_peer_url", `peer URL ${url.href} has no port`);
  return url;
}

/** Refuses a listen URL that cannot be served: `https:` without TLS credentials. */
export function checkListenUrl(url: URL, tls: PeerTlsCredentials | undefined): void {
  checkScheme(url);
  if (url.protocol === "https:" && tls === undefined) {
    throw new TransportError("tls_not_configured", `cannot listen on TLS for ${url.origin}: KeyFile and CertFile are not presented`);
  }
}

/** What a peer server reports to the transport that owns it. */
export interface PeerServerHandlers {
  session(session: http2.ServerHttp2Session): void;
  stream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void;
  /**
   * A connection refused in the TLS handshake (no certificate, an untrusted
   * one, not TLS at all); `reason` is the certificate verification error when
   * there is one (`UNABLE_TO_GET_ISSUER_CERT`...), else the handshake error.
   */
  tlsClientError(reason: string, remoteAddress: string | undefined): void;
}

/**
 * An HTTP/2 server for a listen URL (not yet listening), granting
 * `receiveWindowBytes` to each stream and connection; a TLS server for an
 * `https:` URL.
 */
export function createPeerServer(url: URL, receiveWindowBytes: number, tls: PeerTlsCredentials | undefined, handlers: PeerServerHandlers): net.Server {
  checkListenUrl(url, tls);
  const settings = { initialWindowSize: receiveWindowBytes };
  const onSession = (session: http2.ServerHttp2Session): void => {
    session.setLocalWindowSize(receiveWindowBytes);
    handlers.session(session);
  };
  if (url.protocol === "http:") {
    const server = http2.createServer({ settings });
    server.on("session", onSession);
    server.on("stream", handlers.stream);
    return server;
  }
  const server = http2.createSecureServer({
    settings,
    cert: tls!.cert,
    key: tls!.key,
    ca: tls!.ca,
    requestCert: tls!.verifyClients,
    rejectUnauthorized: tls!.verifyClients,
    ...cipherOptions(tls!),
    allowHTTP1: false,
  });
  server.on("session", onSession);
  server.on("stream", handlers.stream);
  // A certificate that fails verification is refused by destroying the socket after the handshake, without an alert:
  // the verification error is left on the socket, and the client sees the connection close.
  server.on("tlsClientError", (error, socket) => handlers.tlsClientError(socket.authorizationError?.toString() ?? error.message, socket.remoteAddress));
  return server;
}

/** Opens a connection to a peer URL, over TLS with the peer credentials for an `https:` URL. */
export function connectToPeer(url: URL, tls: PeerTlsCredentials | undefined): http2.ClientHttp2Session {
  checkScheme(url);
  if (url.protocol === "http:" || tls === undefined) return http2.connect(url.origin);
  return http2.connect(url.origin, { cert: tls.cert, key: tls.key, ca: tls.ca, ...cipherOptions(tls) });
}

/**
 * Dials a peer URL with the member's peer TLS settings, for requests on the
 * peer port outside the transport (the server's own peer endpoints). Takes the
 * options (their files are read at the first call with that options object, and
 * kept) or credentials from `loadPeerTls`.
 * Throws a TransportError for a malformed URL or unreadable TLS files;
 * connection failures arrive as the session's 'error' event.
 */
export function connectPeer(url: string, tls: PeerTlsOptions | PeerTlsCredentials | undefined): http2.ClientHttp2Session {
  return connectToPeer(parsePeerUrl(url), resolvePeerTls(tls));
}
