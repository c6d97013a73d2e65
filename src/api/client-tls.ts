import { readFileSync, statSync } from "node:fs";
import * as net from "node:net";
import tls from "node:tls";
import type { ClientTlsConfig } from "../server/config.js";
import type { Logger } from "../server/logger.js";
import { recordClientCommonName } from "./client-identity.js";

/**
 * TLS on the client port, from etcd's flags: `--cert-file`, `--key-file`,
 * `--trusted-ca-file`, `--client-cert-auth`, `--client-crl-file`,
 * `--client-cert-allowed-hostname`, `--cipher-suites` (or a certificate made
 * by `--auto-tls`).
 *
 * As in etcd 3.4, connections speak TLS 1.2 (where cipher suites can be
 * chosen), and a client must present a certificate signed by the trusted CA
 * when `--client-cert-auth` is on or a trusted CA file is given. A refused
 * client never reaches a handler: its connection is closed once the
 * handshake is over, and the refusal is logged as etcd logs it.
 *
 * etcd reads the certificate and key at each handshake and the CRL at each
 * connection, so that they can be replaced while it runs; here each new
 * connection looks at the files' metadata, and a change loads them all again
 * (files that do not load leave the ones in use, with a warning).
 */
/** The client TLS settings a port is served with: the configuration's, less how --auto-tls made the files. */
export type ClientTlsOptions = Omit<ClientTlsConfig, "selfSigned">;

/** A TLS file that cannot be read or used; the message says which and why. */
export class ClientTlsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ClientTlsError";
  }
}

/** What the server offers in ALPN, in its order of preference: HTTP/1.1 clients that also offer h2 (curl) get HTTP/1.1, gRPC clients (h2 only) get h2. */
const alpnProtocols = ["http/1.1", "h2"];

function readTlsFile(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ClientTlsError(code === "ENOENT" ? `open ${path}: no such file or directory` : `open ${path}: ${(error as Error).message}`);
  }
}

/** What the client port's TLS layer needs: the TLS server options, and the checks made once a handshake is over. */
export interface ClientTlsServerOptions {
  context: tls.TlsOptions;
  /** The options the files were read from, to read them again when they change. */
  source: ClientTlsOptions;
  /** Whether a client must present a certificate the trusted CA signed (and not revoked). */
  verifyClients: boolean;
  allowedHostname: string | undefined;
}

/** Reads the files and builds the TLS context; throws ClientTlsError for a missing or unusable file. */
export function clientTlsServerOptions(options: ClientTlsOptions): ClientTlsServerOptions {
  if (options.certFile === "" || options.keyFile === "") {
    throw new ClientTlsError(`KeyFile and CertFile must both be present[key: ${options.keyFile}, cert: ${options.certFile}]`);
  }
  const verifyClients = options.clientCertAuth || options.trustedCaFile !== undefined;
  const context: tls.TlsOptions = {
    cert: readTlsFile(options.certFile),
    key: readTlsFile(options.keyFile),
    ca: options.trustedCaFile === undefined ? undefined : readTlsFile(options.trustedCaFile),
    crl: options.crlFile === undefined ? undefined : readTlsFile(options.crlFile),
    minVersion: "TLSv1.2",
    maxVersion: "TLSv1.2",
    ...(options.ciphers.length > 0 ? { ciphers: options.ciphers.join(":") } : {}),
    ALPNProtocols: alpnProtocols,
    requestCert: verifyClients,
    // Verification is judged once the handshake is over (createClientTlsServer), so that a refusal is logged with its reason.
    rejectUnauthorized: false,
  };
  try {
    tls.createSecureContext(context);
  } catch (error) {
    throw new ClientTlsError(`client TLS files (cert ${options.certFile}, key ${options.keyFile}) are not usable: ${(error as Error).message}`);
  }
  return { context, source: options, verifyClients, allowedHostname: options.allowedHostname };
}

/** What identifies the current contents of the TLS files: path, inode, size and modification time of each. */
function fileVersions(options: ClientTlsOptions): string {
  const files = [options.certFile, options.keyFile, options.trustedCaFile, options.crlFile].filter((file) => file !== undefined);
  return files
    .map((file) => {
      try {
        const stats = statSync(file);
        return `${file}:${stats.ino}:${stats.size}:${stats.mtimeMs}`;
      } catch {
        return `${file}:missing`;
      }
    })
    .join("|");
}

/** OpenSSL's verification errors, in the words Go's TLS server gives them (which etcd logs). */
const goVerificationErrors = new Map([
  ...["UNABLE_TO_GET_ISSUER_CERT", "UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "UNABLE_TO_VERIFY_LEAF_SIGNATURE", "SELF_SIGNED_CERT_IN_CHAIN", "DEPTH_ZERO_SELF_SIGNED_CERT"].map(
    (code) => [code, "x509: certificate signed by unknown authority"] as const,
  ),
  ...["CERT_HAS_EXPIRED", "CERT_NOT_YET_VALID"].map((code) => [code, "x509: certificate has expired or is not yet valid"] as const),
]);

/** Why a client that finished the handshake is refused, or undefined to serve it. */
export function refusalReason(socket: tls.TLSSocket, verifyClients: boolean, allowedHostname: string | undefined): string | undefined {
  if (!verifyClients) return undefined;
  if (!socket.authorized) {
    const certificate = socket.getPeerCertificate();
    if (certificate === null || Object.keys(certificate).length === 0) return "tls: client didn't provide a certificate";
    const code = String(socket.authorizationError ?? "");
    // etcd checks its CRL after the handshake, with its own words.
    if (code === "CERT_REVOKED") return `transport: certificate serial ${certificate.serialNumber.toLowerCase()} revoked`;
    return `tls: failed to verify client certificate: ${goVerificationErrors.get(code) ?? code}`;
  }
  if (allowedHostname === undefined) return undefined;
  const certificate = socket.getPeerX509Certificate();
  const matches = net.isIP(allowedHostname) !== 0 ? certificate?.checkIP(allowedHostname) : certificate?.checkHost(allowedHostname, { subject: "never" });
  return matches === undefined ? "client certificate authentication failed" : undefined;
}

/** The common name of a verified client certificate's subject, or undefined. */
export function verifiedCommonName(socket: tls.TLSSocket): string | undefined {
  if (!socket.authorized) return undefined;
  const commonName: unknown = socket.getPeerCertificate().subject?.CN;
  if (Array.isArray(commonName)) return typeof commonName[0] === "string" ? commonName[0] : undefined;
  return typeof commonName === "string" && commonName !== "" ? commonName : undefined;
}

/** The TLS layer of `https` and `unixs` client listeners. */
export interface ClientTlsLayer {
  /** Takes an accepted connection through the TLS handshake and the checks that follow. */
  accept(socket: net.Socket): void;
}

/**
 * The TLS layer of `https` and `unixs` client listeners: accepted connections
 * come out of it to `serve` verified, with the client certificate's common
 * name recorded on them (client-identity.ts), or are closed and logged
 * ("rejected connection").
 */
export function createClientTlsServer(options: ClientTlsServerOptions, logger: Pick<Logger, "info" | "warn">, serve: (socket: tls.TLSSocket) => void): ClientTlsLayer {
  const server = tls.createServer(options.context);
  let loadedVersions = fileVersions(options.source);
  const reloadIfChanged = (): void => {
    const versions = fileVersions(options.source);
    if (versions === loadedVersions) return;
    loadedVersions = versions;
    try {
      server.setSecureContext(clientTlsServerOptions(options.source).context);
      logger.info("reloaded client TLS files", { "cert-file": options.source.certFile, "crl-file": options.source.crlFile ?? "" });
    } catch (error) {
      logger.warn("cannot reload client TLS files; the loaded ones stay in use", { error: (error as Error).message });
    }
  };
  const reject = (socket: tls.TLSSocket, error: string): void => {
    // A unix socket's peer has no address: Go writes it "@".
    const remoteAddress = socket.remoteAddress === undefined ? "@" : `${socket.remoteAddress}:${socket.remotePort}`;
    logger.warn("rejected connection", { "remote-addr": remoteAddress, "server-name": socket.servername || "", error });
    socket.destroy();
  };
  server.on("secureConnection", (socket: tls.TLSSocket) => {
    const refusal = refusalReason(socket, options.verifyClients, options.allowedHostname);
    if (refusal !== undefined) return reject(socket, refusal);
    recordClientCommonName(socket, verifiedCommonName(socket));
    serve(socket);
  });
  server.on("tlsClientError", (error: Error, socket: tls.TLSSocket) => reject(socket, error.message));
  return {
    accept(socket) {
      reloadIfChanged();
      server.emit("connection", socket);
    },
  };
}
