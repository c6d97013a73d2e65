import { clientTlsServerOptions, type ClientTlsServerOptions } from "../api/client-tls.js";
import { ClientServer } from "../api/server.js";
import { ensureSelfSignedCertificate } from "../pkg/self-signed-certificate.js";
import { loadConfig, type ClientTlsConfig, type ServerConfig } from "./config.js";
import { createLogger, silentLogger, type Logger } from "./logger.js";
import { clusterVersion, EtcdServer, etcdVersion } from "./member.js";

export interface StartOptions {
  /** etcd's command-line flags, e.g. ["--data-dir", "/tmp/x", "--listen-client-urls", "http://127.0.0.1:0"]. */
  args?: readonly string[];
  /** `ETCD_*` variables to read; none by default when embedding. */
  environment?: NodeJS.ProcessEnv;
  /** Where logs go; silent by default when embedding. */
  logger?: Logger;
}

/** A running member: its server, and the client addresses it listens on. */
export interface Etcd {
  readonly server: EtcdServer;
  readonly config: ServerConfig;
  /** `host:port` of each client listener, with the real port when 0 was asked (the socket path of a `unix`/`unixs` URL). */
  readonly clientAddresses: readonly string[];
  close(): Promise<void>;
}

/** Starts a member in this process. */
export async function startEtcd(options: StartOptions = {}): Promise<Etcd> {
  const config = loadConfig(options.args ?? [], options.environment ?? {});
  const logger = options.logger ?? silentLogger;
  return startWithConfig(config, logger);
}

export async function startWithConfig(config: ServerConfig, logger: Logger): Promise<Etcd> {
  logger.info("starting an etcd server", { "etcd-version": etcdVersion, name: config.name, "data-dir": config.dataDir, "listen-client-urls": config.listenClientUrls.map(String) });
  // TLS files are read before anything starts: a missing or bad one stops the start.
  const clientTls = config.clientTls === undefined ? undefined : prepareClientTls(config.clientTls, logger);
  const server = await EtcdServer.start(config, logger);
  const memberId = server.memberId.toString(16);
  logger.info("published local member to cluster through raft", {
    "local-member-id": memberId,
    "local-member-attributes": `{Name:${config.name} ClientURLs:[${config.advertiseClientUrls.join(" ")}]}`,
    "request-path": `/0/members/${memberId}/attributes`,
    "cluster-id": server.clusterId.toString(16),
  });
  logger.info("enabled capabilities for version", { "cluster-version": clusterVersion.slice(0, 3) });
  const clients = new ClientServer(server, clientTls);
  const clientAddresses = await clients.listen();
  logger.info("ready to serve client requests");
  clientAddresses.forEach((address, index) => {
    const protocol = config.listenClientUrls[index]!.protocol;
    if (protocol === "https:" || protocol === "unixs:") logger.info("serving client traffic securely", { address });
    else logger.warn(`serving insecure client requests on ${address}, this is strongly discouraged!`);
  });
  for (const url of config.listenClientUrls) {
    if ((url.protocol !== "http:" && url.protocol !== "unix:") || config.clientTls === undefined) continue;
    const clientUrl = `${url.protocol}//${url.host}`;
    logger.warn("scheme is HTTP while key and cert files are present; ignoring key and cert files", { "client-url": clientUrl });
    if (config.clientTls.clientCertAuth) logger.warn("scheme is HTTP while --client-cert-auth is enabled; ignoring client cert auth for this URL", { "client-url": clientUrl });
  }
  let closing: Promise<void> | undefined;
  return {
    server,
    config,
    clientAddresses,
    close() {
      closing ??= (async () => {
        await clients.close();
        await server.close();
        logger.info("stopped serving");
      })();
      return closing;
    },
  };
}

/** Makes the --auto-tls certificate when it is missing, reads the client TLS files, and logs as etcd does. */
function prepareClientTls(config: ClientTlsConfig, logger: Logger): ClientTlsServerOptions {
  if (config.selfSigned !== undefined) {
    const made = ensureSelfSignedCertificate(config.selfSigned.directory, config.selfSigned.hosts);
    if (made.created) {
      logger.info("created cert file", { path: made.certFile });
      logger.info("created key file", { path: made.keyFile });
    }
  }
  const options = clientTlsServerOptions(config);
  const tlsInfo = `cert = ${config.certFile}, key = ${config.keyFile}, trusted-ca = ${config.trustedCaFile ?? ""}, client-cert-auth = ${config.clientCertAuth}, crl-file = ${config.crlFile ?? ""}`;
  logger.info("starting with client TLS", { "tls-info": tlsInfo, "cipher-suites": config.ciphers });
  return options;
}

export { createLogger };
