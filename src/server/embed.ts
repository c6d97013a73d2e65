import { ClientServer } from "../api/server.js";
import { loadConfig, type ServerConfig } from "./config.js";
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
  /** `host:port` of each client listener, with the real port when 0 was asked. */
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
  let clients: ClientServer;
  let clientAddresses: string[];
  try {
    server = await EtcdServer.start(config, logger);
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
    clients = new ClientServer(server);
    clientAddresses = await clients.listen();
  } catch (error) {
    await server?.close();
    await Promise.all(locks.map((lock) => lock.release()));
    throw error;
  }
  const started = server;
  logger.info("ready to serve client requests", undefined, "embed: ready to serve client requests");
  for (const address of clientAddresses) {
    logger.warn("serving client traffic insecurely; this is strongly discouraged!", { address }, `embed: serving insecure client requests on ${address}, this is strongly discouraged!`);
  }
  let closing: Promise<void> | undefined;
  return {
    server: started,
    config,
    clientAddresses,
    close() {
      closing ??= (async () => {
        await clients.close();
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

export { createLogger };
