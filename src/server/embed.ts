import { clientTlsServerOptions, type ClientTlsServerOptions } from "../api/client-tls.js";
import { ClientServer } from "../api/server.js";
import { ensureSelfSignedCertificate } from "../pkg/self-signed-certificate.js";
import { loadConfig, type ClientTlsConfig, type ServerConfig } from "./config.js";
import { DirectoryLock } from "./data-dir-lock.js";
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
  const locks = await lockDirectories(config);
  let server: EtcdServer | undefined;
  let clients: ClientServer | undefined;
  let clientAddresses: string[];
  try {
    // TLS files are read before the member starts: a missing or bad one stops the start.
    const clientTls = config.clientTls === undefined ? undefined : prepareClientTls(config.clientTls, logger);
    if (config.authToken === "simple") logger.warn("simple token is not cryptographically signed", undefined, "auth: simple token is not cryptographically signed");
    server = await EtcdServer.start(config, logger);
    // The client port listens before the readiness lines: test rigs connect as soon as they read them.
    clients = new ClientServer(server, clientTls);
    clientAddresses = await clients.listen();
    const memberId = server.memberId.toString(16);
    const clusterId = server.clusterId.toString(16);
    const attributes = `{Name:${config.name} ClientURLs:[${config.advertiseClientUrls.join(" ")}]}`;
    logger.info(
      "published local member to cluster through raft",
      { "local-member-id": memberId, "local-member-attributes": attributes, "request-path": `/0/members/${memberId}/attributes`, "cluster-id": clusterId },
      `etcdserver: published ${attributes} to cluster ${clusterId}`,
    );
    const version = clusterVersion.slice(0, 3);
    logger.info("enabled capabilities for version", { "cluster-version": version }, `etcdserver/api: enabled capabilities for version ${version}`);
  } catch (error) {
    await clients?.close();
    await server?.close();
    await Promise.all(locks.map((lock) => lock.release()));
    throw error;
  }
  const started = server;
  const serving = clients;
  logger.info("ready to serve client requests", undefined, "embed: ready to serve client requests");
  clientAddresses.forEach((address, index) => {
    const protocol = config.listenClientUrls[index]!.protocol;
    if (protocol === "https:" || protocol === "unixs:") logger.info("serving client traffic securely", { address }, `embed: serving client requests on ${address}`);
    else logger.warn("serving client traffic insecurely; this is strongly discouraged!", { address }, `embed: serving insecure client requests on ${address}, this is strongly discouraged!`);
  });
  for (const url of config.listenClientUrls) {
    if ((url.protocol !== "http:" && url.protocol !== "unix:") || config.clientTls === undefined) continue;
    const clientUrl = `${url.protocol}//${url.host}`;
    logger.warn("scheme is HTTP while key and cert files are present; ignoring key and cert files", { "client-url": clientUrl });
    if (config.clientTls.clientCertAuth) logger.warn("scheme is HTTP while --client-cert-auth is enabled; ignoring client cert auth for this URL", { "client-url": clientUrl });
  }
  let closing: Promise<void> | undefined;
  return {
    server: started,
    config,
    clientAddresses,
    close() {
      closing ??= (async () => {
        await serving.close();
        await started.close();
        await Promise.all(locks.map((lock) => lock.release()));
        logger.info("stopped serving", undefined, "etcdserver: stopped serving");
      })();
      return closing;
    },
  };
}

/** The data dir, and the WAL dir when it is elsewhere: no second process may open them while this member runs. */
async function lockDirectories(config: ServerConfig): Promise<DirectoryLock[]> {
  const locks = [await DirectoryLock.acquire(config.dataDir)];
  if (config.walDir !== "") {
    try {
      locks.push(await DirectoryLock.acquire(config.walDir));
    } catch (error) {
      await locks[0]!.release();
      throw error;
    }
  }
  return locks;
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
