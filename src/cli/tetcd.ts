#!/usr/bin/env node
import { ConfigError, HelpRequested, loadConfig, type FlagNotice, type ServerConfig } from "../server/config.js";
import { startWithConfig } from "../server/embed.js";
import { flagSpecs } from "../server/flags.js";
import { parseArgs } from "../server/flag-parse.js";
import { parseGoBool } from "../server/go-values.js";
import { capnslogLine, createLogger } from "../server/logger.js";
import { etcdVersion } from "../server/member.js";

const packageVersion = "0.1.0";

/** What each stopping signal is called in etcd's log line. */
const signalNames = { SIGTERM: "terminated", SIGINT: "interrupt" } as const;

/**
 * The tetcd server, with etcd's process contract: etcd's flags and `ETCD_*`
 * variables, its exit codes (2 for a flag it cannot parse, 1 for a refused
 * start), its readiness lines in either log format, and on SIGTERM or
 * SIGINT a clean stop after which the process ends by that same signal.
 */
async function main(argv: string[]): Promise<void> {
  const config = readConfig(argv);
  if (config === undefined) return;
  if (config.logger === "capnslog") process.stderr.write("[WARNING] Deprecated '--logger=capnslog' flag is set; use '--logger=zap' flag instead\n");
  const streams = config.logOutputs.map((output) => (output === "stdout" ? process.stdout : process.stderr));
  const logger = createLogger(config.logLevel, "tetcd", (line) => {
    for (const stream of streams) stream.write(line);
  }, config.logger);
  const etcd = await startWithConfig(config, logger);
  let stopping = false;
  const stop = (reason: string, signal?: keyof typeof signalNames): void => {
    if (stopping) return;
    stopping = true;
    if (signal === undefined) logger.info("shutting down", { reason }, `etcdserver: shutting down: ${reason}`);
    else logger.info("received signal; shutting down", { signal: signalNames[signal] }, `pkg/osutil: received ${signalNames[signal]} signal, shutting down...`);
    etcd.close().then(
      () => exitAfterStop(signal),
      (error: unknown) => {
        logger.error("shutdown failed", { error: String(error) });
        process.exit(1);
      },
    );
  };
  for (const signal of Object.keys(signalNames) as (keyof typeof signalNames)[]) process.on(signal, () => stop(signal, signal));
  // A member removed from its cluster has nothing left to serve: it exits, as etcd does.
  void etcd.server.removed.then(() => stop("removed from the cluster"));
}

/** The configuration, or undefined once --help or --version has been answered; exits as etcd does on bad flags. */
function readConfig(argv: string[]): ServerConfig | undefined {
  const notices: FlagNotice[] = [];
  try {
    if (parseGoBool(parseArgs(argv).get("version") ?? "false") === true) {
      process.stdout.write(`tetcd Version: ${packageVersion}\netcd API Version: ${etcdVersion}\nNode Version: ${process.version}\n`);
      return undefined;
    }
    const config = loadConfig(argv, process.env, notices);
    for (const notice of notices) process.stderr.write(capnslogLine(notice.level, `pkg/flags: ${notice.text}`));
    return config;
  } catch (error) {
    for (const notice of notices) process.stderr.write(capnslogLine(notice.level, `pkg/flags: ${notice.text}`));
    if (error instanceof HelpRequested) {
      process.stderr.write(usage());
      process.exit(0);
    }
    if (!(error instanceof ConfigError)) throw error;
    if (error.exitCode === 2) process.stderr.write(`${error.message}\n${usage()}`);
    else process.stderr.write(capnslogLine("E", `etcdmain: error verifying flags, ${error.message}. See 'tetcd --help'.`));
    process.exit(error.exitCode);
  }
}

function usage(): string {
  const lines = flagSpecs.map((spec) => `  --${spec.name} '${spec.default}'`);
  return [
    "Usage:",
    "",
    "  tetcd [flags]",
    "    Start a tetcd member. Every flag is also read from its ETCD_* environment variable (--snapshot-count from ETCD_SNAPSHOT_COUNT),",
    "    unless --config-file names a YAML file whose keys are the flag names.",
    "",
    "  tetcd snapshot restore FILE [--data-dir DIR] [--name NAME] [--initial-cluster NAME=URL,...]",
    "        [--initial-cluster-token TOKEN] [--initial-advertise-peer-urls URLS] [--skip-hash-check]",
    "    Build a member's data dir from a snapshot file (saved from tetcd or etcd 3.4 with etcdctl snapshot save).",
    "  tetcd snapshot status FILE [-w simple|table|json]",
    "",
    "  tetcd --version",
    "  tetcd -h | --help",
    "",
    "Flags (etcd 3.4's):",
    ...lines,
    "",
  ].join("\n");
}

/** Ends the process as etcd does after a clean stop: by the signal that asked for it (exit status 128 + its number). */
function exitAfterStop(signal: keyof typeof signalNames | undefined): void {
  if (signal === undefined) process.exit(0);
  process.removeAllListeners(signal);
  process.kill(process.pid, signal);
}

/** `tetcd snapshot restore|status ...`: offline tools on snapshot files; exit status 1 on error, as etcdutl. */
async function snapshotMain(argv: string[]): Promise<void> {
  const { snapshotCommand, UsageError } = await import("./snapshot-command.js");
  try {
    await snapshotCommand(argv, (text) => process.stdout.write(text), (text) => process.stderr.write(`${text}\n`));
  } catch (error) {
    process.stderr.write(`Error: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(error instanceof UsageError ? 2 : 1);
  }
}

const argv = process.argv.slice(2);
(argv[0] === "snapshot" ? snapshotMain(argv.slice(1)) : main(argv)).catch((error: unknown) => {
  process.stderr.write(`tetcd: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});

