import { readFileSync } from "node:fs";
import tls from "node:tls";
import { TransportError } from "./errors.js";

/**
 * Peer TLS as etcd's flags give it: file paths, read when a transport is built
 * (a missing or bad file is a startup error, as in etcd).
 *
 * The one certificate serves both ends: a member presents it as the server
 * certificate to peers dialling in, and as the client certificate when it dials
 * a peer (etcd does the same with --peer-cert-file). The trusted CA, when
 * given, is the only CA trusted on both ends; without it, Node's default roots
 * verify servers.
 */
export interface PeerTlsOptions {
  /** PEM certificate (chain) of this member: `--peer-cert-file`. */
  certFile: string;
  /** PEM private key of that certificate: `--peer-key-file`. */
  keyFile: string;
  /** PEM CA certificate(s) that peer certificates must chain to: `--peer-trusted-ca-file`. */
  trustedCaFile?: string | undefined;
  /** `--peer-client-cert-auth`: peers dialling in must present a certificate that the trusted CA signed. */
  clientCertAuth: boolean;
  /**
   * `--cipher-suites`, as OpenSSL names: the TLS 1.2 suites allowed, on both
   * ends. With any, connections are TLS 1.2 (as etcd 3.4's always are), where
   * suites apply.
   */
  ciphers?: readonly string[] | undefined;
}

/** Peer TLS read into memory and checked (certificate, key and CA parse, and the key matches the certificate). */
export interface PeerTlsCredentials {
  cert: Buffer;
  key: Buffer;
  ca: Buffer | undefined;
  /**
   * Whether a peer dialling in must present a certificate the trusted CA
   * signed. As in etcd 3.4 (TLSInfo.ServerConfig), a trusted CA file alone
   * turns this on too: `clientCertAuth || trustedCaFile !== undefined`.
   */
  verifyClients: boolean;
  /** The allowed suites joined with ':', as Node takes them; undefined for Node's defaults. */
  ciphers: string | undefined;
}

function readTlsFile(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new TransportError("bad_peer_tls", `cannot read the peer ${what} file ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** Reads and checks the peer TLS files; a TransportError (code `bad_peer_tls`) names the file or the problem. */
export function loadPeerTls(options: PeerTlsOptions): PeerTlsCredentials {
  if (options.certFile === "" || options.keyFile === "") {
    throw new TransportError("bad_peer_tls", `KeyFile and CertFile must both be present[key: ${options.keyFile}, cert: ${options.certFile}]`);
  }
  const hasCa = options.trustedCaFile !== undefined && options.trustedCaFile !== "";
  const credentials: PeerTlsCredentials = {
    cert: readTlsFile(options.certFile, "certificate"),
    key: readTlsFile(options.keyFile, "key"),
    ca: hasCa ? readTlsFile(options.trustedCaFile!, "trusted CA") : undefined,
    verifyClients: options.clientCertAuth || hasCa,
    ciphers: options.ciphers !== undefined && options.ciphers.length > 0 ? options.ciphers.join(":") : undefined,
  };
  try {
    tls.createSecureContext({ cert: credentials.cert, key: credentials.key, ca: credentials.ca, ...cipherOptions(credentials) });
  } catch (error) {
    throw new TransportError("bad_peer_tls", `peer TLS files (cert ${options.certFile}, key ${options.keyFile}) are not usable: ${error instanceof Error ? error.message : String(error)}`);
  }
  return credentials;
}

/** The TLS options that restrict connections to the credentials' cipher suites (none without suites). */
export function cipherOptions(credentials: PeerTlsCredentials): { ciphers?: string; maxVersion?: "TLSv1.2" } {
  return credentials.ciphers === undefined ? {} : { ciphers: credentials.ciphers, maxVersion: "TLSv1.2" };
}

/** Credentials already read, by options object: a member's one options object has its files read once. */
const loaded = new WeakMap<PeerTlsOptions, PeerTlsCredentials>();

/**
 * The options or the credentials, as credentials. Files are read at the first
 * use of an options object and kept for it, like the transport, which reads
 * them once when constructed (etcd 3.4 rereads them at each handshake, for
 * certificate rotation; tetcd needs a restart).
 */
export function resolvePeerTls(tlsOptions: PeerTlsOptions | PeerTlsCredentials | undefined): PeerTlsCredentials | undefined {
  if (tlsOptions === undefined) return undefined;
  if (!("certFile" in tlsOptions)) return tlsOptions;
  let credentials = loaded.get(tlsOptions);
  if (credentials === undefined) {
    credentials = loadPeerTls(tlsOptions);
    loaded.set(tlsOptions, credentials);
  }
  return credentials;
}

const tlsErrorCodes = new Set([
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "EPROTO",
]);

/**
 * Whether a connection failed in the TLS handshake (a certificate refused on
 * either side, or a protocol mismatch): a misconfiguration, worth a warning.
 * HTTP/2 reports such a failure on a pending stream as a cancellation whose
 * `cause` is the TLS error, so the cause is looked at too.
 */
export function isTlsError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = (error as NodeJS.ErrnoException).code;
  if (code !== undefined && (tlsErrorCodes.has(code) || code.startsWith("ERR_SSL_") || code.startsWith("ERR_TLS_"))) return true;
  return error.cause !== undefined && error.cause !== error && isTlsError(error.cause);
}
