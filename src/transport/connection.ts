import http2 from "node:http2";
import { TransportError } from "./errors.js";

/**
 * The one place where peer servers are created and peer connections opened.
 * Mutual TLS goes here: an `https:` URL will take `http2.createSecureServer` /
 * `http2.connect` with the peer certificate, key and trusted CA (etcd's
 * `--peer-cert-file`, `--peer-key-file`, `--peer-trusted-ca-file`,
 * `--peer-client-cert-auth`), passed in through an options object that both
 * functions take; nothing else in the transport depends on the scheme.
 */
function checkScheme(url: URL): void {
  if (url.protocol === "http:") return;
  if (url.protocol === "https:") throw new TransportError("tls_not_supported", `peer URL ${url.href}: https peer URLs (TLS) are not supported yet`);
  throw new TransportError("bad_peer_url", `peer URL ${url.href}: scheme must be http or https`);
}

/** Parses and checks a peer URL (`http://host:port`). */
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

/** An HTTP/2 server for a listen URL (not yet listening), granting `receiveWindowBytes` to each stream and connection. */
export function createPeerServer(url: URL, receiveWindowBytes: number): http2.Http2Server {
  checkScheme(url);
  const server = http2.createServer({ settings: { initialWindowSize: receiveWindowBytes } });
  server.on("session", (session) => {
    session.setLocalWindowSize(receiveWindowBytes);
  });
  return server;
}

/** Opens a connection to a peer URL. */
export function connectToPeer(url: URL): http2.ClientHttp2Session {
  checkScheme(url);
  return http2.connect(url.origin);
}
