#!/usr/bin/env node
import { ConfigError, loadConfig } from "../server/config.js";
import { startWithConfig } from "../server/embed.js";
import { createLogger } from "../server/logger.js";
import { etcdVersion } from "../server/member.js";

const packageVersion = "0.1.0";

/** The tetcd server: etcd's flags, etcd's behaviour. */
async function main(argv: string[]): Promise<void> {
  if (argv.includes("--version") || argv.includes("-version")) {
    process.stdout.write(`tetcd Version: ${packageVersion}\netcd API Version: ${etcdVersion}\nNode Version: ${process.version}\n`);
    return;
  }
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write("Usage: tetcd [flags]\n  Starts a tetcd member; takes etcd 3.4's flags (see `etcd --help`), ETCD_* environment variables, or --config-file.\n");
    return;
  }
  let config;
  try {
    config = loadConfig(argv, process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`tetcd: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const streams = config.logOutputs.map((output) => (output === "stdout" ? process.stdout : process.stderr));
  const logger = createLogger(config.logLevel, "tetcd", (line) => {
    for (const stream of streams) stream.write(line);
  });
  const etcd = await startWithConfig(config, logger);
  let stopping = false;
  const stop = (reason: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info("shutting down", { reason });
    etcd.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error("shutdown failed", { error: String(error) });
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  // A member removed from its cluster has nothing left to serve: it exits, as etcd does.
  void etcd.server.removed.then(() => stop("removed from the cluster"));
}

main(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`tetcd: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
