import { ClientServer } from "../api/server.js";
import { loadConfig, type ServerConfig } from "./config.js";
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
  const server = await EtcdServer.start(config, logger);
  const memberId = server.memberId.toString(16);
  logger.info("published local member to cluster through raft", {
    "local-member-id": memberId,
    "local-member-attributes": `{Name:${config.name} ClientURLs:[${config.advertiseClientUrls.join(" ")}]}`,
    "request-path": `/0/members/${memberId}/attributes`,
    "cluster-id": server.clusterId.toString(16),
  });
  logger.info("enabled capabilities for version", { "cluster-version": clusterVersion.slice(0, 3) });
  const clients = new ClientServer(server);
  const clientAddresses = await clients.listen();
  logger.info("ready to serve client requests");
  for (const address of clientAddresses) {
    logger.warn(`serving insecure client requests on ${address}, this is strongly discouraged!`);
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

export { createLogger };
