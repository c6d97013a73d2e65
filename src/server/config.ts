import { parseCompactionRetention, type AutoCompactionMode } from "./auto-compactor.js";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { parseJwtOptions, type JwtOptions } from "../auth/jwt-tokens.js";
import { openSslCipherSuites, UnknownCipherSuiteError } from "../pkg/cipher-suites.js";
import { checkValue, ConfigError, mergeEnvironment, parseArgs, type FlagNotice, type FlagValues } from "./flag-parse.js";
import { flagsByName, flagSpecs, type FlagSpec } from "./flags.js";
import { parseGoBool, parseGoDurationMs, parseGoInteger } from "./go-values.js";

export { ConfigError, HelpRequested, type FlagNotice } from "./flag-parse.js";

/** A member's configuration, from etcd's flags, `ETCD_*` variables or a YAML file. */
export interface ServerConfig {
  name: string;
  dataDir: string;
  walDir: string;
  snapshotCount: number;
  /** WAL segments kept, once their entries are in the durable backend (0: all). */
  maxWals: number;
  heartbeatIntervalMs: number;
  electionTimeoutMs: number;
  listenClientUrls: URL[];
  advertiseClientUrls: string[];
  listenPeerUrls: URL[];
  initialAdvertisePeerUrls: string[];
  initialCluster: Map<string, string[]>;
  /** --force-new-cluster: a restarted member becomes a cluster of one with its data. */
  forceNewCluster: boolean;
  /** --unsafe-no-fsync: neither the WAL nor the backend is fsynced (for tests, as etcd's). */
  unsafeNoFsync: boolean;
  /** --auto-compaction-mode. */
  autoCompactionMode: AutoCompactionMode;
  /** --auto-compaction-retention: milliseconds in periodic mode, revisions in revision mode; 0 is off. */
  autoCompactionRetention: number;
  initialClusterState: "new" | "existing";
  initialClusterToken: string;
  strictReconfigCheck: boolean;
  quotaBackendBytes: number;
  maxRequestBytes: number;
  maxTxnOps: number;
  maxConcurrentStreams: number;
  compactionBatchLimit: number;
  backendBatchIntervalMs: number;
  leaseCheckpointEnabled: boolean;
  leaseCheckpointIntervalMs: number;
  backendBatchLimit: number;
  watchProgressNotifyIntervalMs: number;
  logLevel: "debug" | "info" | "warn" | "error" | "panic" | "fatal";
  /** etcd 3.4's loggers: `capnslog` (its default) writes text lines, `zap` JSON lines. */
  logger: "capnslog" | "zap";
  logOutputs: string[];
  enableGrpcGateway: boolean;
  /** `extensive` adds gRPC handling-time histograms; etcd takes any other value as `basic`. */
  metrics: "basic" | "extensive";
  /** Origins given CORS headers on the HTTP side of the client port (etcd's --cors); `*` for any. */
  cors: string[];
  /** --auth-token: `simple`, or `jwt` with etcd's options (sign-method, pub-key, priv-key, ttl) in `authJwt`. */
  authToken: "simple" | "jwt";
  authJwt: JwtOptions | undefined;
  /** --auth-token-ttl: how long a simple token lives without use. */
  authTokenTtlSeconds: number;
  /** --bcrypt-cost: the cost of the password hashes made for new and changed passwords. */
  bcryptCost: number;
  /** Serve the dashboard at /dashboard (tetcd's own --dashboard, on by default). */
  dashboard: boolean;
  /** Extra listeners serving only /metrics and /health. */
  listenMetricsUrls: URL[];
  /** Serve the v2 API (`/v2/keys` and the rest) on the client port's HTTP side. */
  enableV2: boolean;
  /**
   * Peer TLS (--peer-cert-file, --peer-key-file, --peer-trusted-ca-file,
   * --peer-client-cert-auth), for `https` peer URLs; undefined when neither
   * the certificate nor the key is given (etcd then ignores the other two).
   * The files are read when the peer transport is constructed.
   */
  peerTls: PeerTlsConfig | undefined;
  /**
   * Client TLS (--cert-file, --key-file, --trusted-ca-file,
   * --client-cert-auth, --client-crl-file, --client-cert-allowed-hostname,
   * --cipher-suites, --auto-tls), for `https` client URLs; undefined when
   * there is neither a certificate and key nor --auto-tls. `http` client URLs
   * are served in plain text either way, as etcd serves them.
   */
  clientTls: ClientTlsConfig | undefined;
}

/** The peer TLS flags; the same shape as the transport's PeerTlsOptions. */
export interface PeerTlsConfig {
  certFile: string;
  keyFile: string;
  trustedCaFile: string | undefined;
  clientCertAuth: boolean;
  /** --cipher-suites as OpenSSL names; present only when suites are given. */
  ciphers?: string[];
}

/** The client TLS flags, checked; the files are read when the client port opens. */
export interface ClientTlsConfig {
  /** PEM certificate (chain) the port presents. */
  certFile: string;
  /** PEM private key of that certificate. */
  keyFile: string;
  /** PEM CA certificate(s) that client certificates must chain to. */
  trustedCaFile: string | undefined;
  clientCertAuth: boolean;
  /** PEM certificate revocation list: client certificates it revokes are refused. */
  crlFile: string | undefined;
  /** A verified client certificate must be valid for this host name or IP address (its SANs). */
  allowedHostname: string | undefined;
  /** --cipher-suites as OpenSSL names (etcd takes Go's), in order; empty for the defaults. */
  ciphers: string[];
  /**
   * --auto-tls without --cert-file and --key-file: certFile and keyFile are a
   * self-signed pair kept in this directory (`<data-dir>/fixtures/client`),
   * made at start for these hosts when absent. As in etcd, the other client
   * TLS flags then do not apply: no client certificate is asked for.
   */
  selfSigned: { directory: string; hosts: string[] } | undefined;
}

/** etcd's default backend quota: 2 GiB. */
export const defaultQuotaBackendBytes = 2 * 1024 * 1024 * 1024;
/** etcd refuses quotas above 8 GiB. */
export const maxQuotaBackendBytes = 8 * 1024 * 1024 * 1024;

/**
 * Reads argv (without the program), the environment and, when given, the
 * config file, which replaces both as in etcd. What etcd would log about
 * the environment while reading it is added to `notices`.
 */
export function loadConfig(argv: readonly string[], environment: NodeJS.ProcessEnv, notices: FlagNotice[] = []): ServerConfig {
  const fromArgs = parseArgs(argv);
  const configFile = fromArgs.get("config-file") || environment["ETCD_CONFIG_FILE"];
  const values = configFile !== undefined && configFile !== "" ? readConfigFile(configFile) : mergeEnvironment(fromArgs, environment, notices);
  values.delete("config-file");
  return buildConfig(values);
}

function readConfigFile(path: string): FlagValues {
  let document: unknown;
  try {
    document = parseYaml(readFileSync(path, "utf8"));
  } catch (error) {
    throw new ConfigError(`cannot read config file ${path}: ${(error as Error).message}`);
  }
  const values: FlagValues = new Map();
  if (document === null || document === undefined) return values;
  if (typeof document !== "object" || Array.isArray(document)) throw new ConfigError(`config file ${path} is not a YAML mapping`);
  for (const [name, value] of Object.entries(document as Record<string, unknown>)) {
    if (transportSecurityKeys.has(name)) {
      for (const [flagName, flagValue] of transportSecurityFlags(path, name, value)) values.set(flagName, flagValue);
      continue;
    }
    const spec = flagsByName.get(name);
    if (spec === undefined) throw new ConfigError(`config file ${path}: unknown field "${name}"`);
    if (value === null || value === undefined) continue;
    const text = Array.isArray(value) ? value.join(",") : String(value);
    checkValue(spec, text, `${name} in ${path}`, 1);
    values.set(name, text);
  }
  return values;
}

/** etcd's config file nests the TLS flags of each port under these keys, with the flags' prefixes. */
const transportSecurityKeys = new Map([
  ["client-transport-security", ""],
  ["peer-transport-security", "peer-"],
]);
/** The fields of a transport security block (etcd 3.4's), each the flag of that name after the prefix. */
const transportSecurityFields = new Set(["cert-file", "key-file", "client-cert-auth", "trusted-ca-file", "auto-tls"]);

/** The flags a `client-transport-security` or `peer-transport-security` block of a config file sets. */
function transportSecurityFlags(path: string, key: string, block: unknown): Array<[string, string]> {
  if (block === null || block === undefined) return [];
  if (typeof block !== "object" || Array.isArray(block)) throw new ConfigError(`config file ${path}: "${key}" is not a mapping`);
  const prefix = transportSecurityKeys.get(key)!;
  const flags: Array<[string, string]> = [];
  for (const [field, value] of Object.entries(block as Record<string, unknown>)) {
    if (!transportSecurityFields.has(field)) throw new ConfigError(`config file ${path}: unknown field "${key}.${field}"`);
    if (value !== null && value !== undefined) flags.push([`${prefix}${field}`, String(value)]);
  }
  return flags;
}

function buildConfig(values: FlagValues): ServerConfig {
  const get = (name: string): string => values.get(name) ?? flagsByName.get(name)!.default;
  const integer = (name: string): number => Number(normalize(flagsByName.get(name)!, get(name)));
  const bool = (name: string): boolean => parseGoBool(get(name)) === true;
  const durationMs = (name: string): number => parseGoDurationMs(get(name));
  const name = get("name");
  const logLevel = get("log-level");
  if (!["debug", "info", "warn", "error", "panic", "fatal"].includes(logLevel)) throw new ConfigError(`unknown log-level "${logLevel}"`);
  const logger = get("logger");
  if (logger !== "capnslog" && logger !== "zap") throw new ConfigError(`unknown logger option "${logger}"`);
  const autoCompactionMode = get("auto-compaction-mode");
  if (autoCompactionMode !== "periodic" && autoCompactionMode !== "revision") throw new ConfigError(`unknown auto-compaction-mode "${autoCompactionMode}"`);
  for (const [flagName, value] of values) checkBuilt(flagsByName.get(flagName)!, value);
  let autoCompactionRetention: number;
  try {
    autoCompactionRetention = parseCompactionRetention(autoCompactionMode, get("auto-compaction-retention"), parseGoDurationMs);
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
  const initialClusterState = get("initial-cluster-state") as ServerConfig["initialClusterState"];
  const quotaBackendBytes = integer("quota-backend-bytes");
  const initialAdvertisePeerUrls = splitList(get("initial-advertise-peer-urls"));
  const initialClusterText = get("initial-cluster") || `${name}=${initialAdvertisePeerUrls.join(`,${name}=`)}`;
  const config: ServerConfig = {
    name,
    dataDir: get("data-dir") || `${name}.tetcd`,
    walDir: get("wal-dir"),
    snapshotCount: positiveOr(integer("snapshot-count"), 100_000),
    maxWals: integer("max-wals"),
    heartbeatIntervalMs: integer("heartbeat-interval"),
    electionTimeoutMs: integer("election-timeout"),
    listenClientUrls: parseUrls(get("listen-client-urls")),
    advertiseClientUrls: splitList(get("advertise-client-urls")),
    listenPeerUrls: parseUrls(get("listen-peer-urls")),
    initialAdvertisePeerUrls,
    initialCluster: parseInitialCluster(initialClusterText),
    initialClusterState,
    initialClusterToken: get("initial-cluster-token"),
    strictReconfigCheck: bool("strict-reconfig-check"),
    quotaBackendBytes: quotaBackendBytes <= 0 ? defaultQuotaBackendBytes : Math.min(quotaBackendBytes, maxQuotaBackendBytes),
    maxRequestBytes: integer("max-request-bytes"),
    maxTxnOps: integer("max-txn-ops"),
    maxConcurrentStreams: Math.min(integer("max-concurrent-streams"), 2 ** 32 - 1),
    compactionBatchLimit: integer("experimental-compaction-batch-limit"),
    autoCompactionMode,
    autoCompactionRetention,
    unsafeNoFsync: bool("unsafe-no-fsync"),
    forceNewCluster: bool("force-new-cluster"),
    backendBatchIntervalMs: positiveOr(durationMs("backend-batch-interval"), 100),
    leaseCheckpointEnabled: bool("experimental-enable-lease-checkpoint"),
    leaseCheckpointIntervalMs: positiveOr(durationMs("experimental-lease-checkpoint-interval"), 300_000),
    backendBatchLimit: positiveOr(integer("backend-batch-limit"), 10_000),
    watchProgressNotifyIntervalMs: durationMs("experimental-watch-progress-notify-interval"),
    logger,
    logLevel: (bool("debug") ? "debug" : logLevel) as ServerConfig["logLevel"],
    logOutputs: splitList(get("log-outputs") === "default" && get("log-output") !== "" ? get("log-output") : get("log-outputs")),
    enableGrpcGateway: bool("enable-grpc-gateway"),
    metrics: get("metrics") === "extensive" ? "extensive" : "basic",
    listenMetricsUrls: parseUrls(get("listen-metrics-urls")),
    cors: splitList(get("cors")),
    dashboard: bool("dashboard"),
    authToken: get("auth-token").startsWith("jwt") ? "jwt" : "simple",
    authJwt: authJwtOptions(get("auth-token")),
    authTokenTtlSeconds: integer("auth-token-ttl"),
    bcryptCost: integer("bcrypt-cost"),
    enableV2: bool("enable-v2"),
    peerTls: peerTlsConfig(get),
    clientTls: undefined,
  };
  const ciphers = cipherSuites(get("cipher-suites"));
  config.clientTls = clientTlsConfig(get, config.dataDir, config.listenClientUrls, ciphers);
  // --cipher-suites applies to the peer port too, as in etcd.
  if (config.peerTls !== undefined && ciphers.length > 0) config.peerTls.ciphers = ciphers;
  checkCluster(config);
  for (const output of config.logOutputs) {
    if (!["default", "stderr", "stdout"].includes(output)) throw new ConfigError(`--log-outputs=${output} is not supported yet by tetcd (default, stderr and stdout are)`);
  }
  if (config.electionTimeoutMs < 5 * config.heartbeatIntervalMs) {
    throw new ConfigError(`--election-timeout[${config.electionTimeoutMs}ms] should be at least as 5 times as --heartbeat-interval[${config.heartbeatIntervalMs}ms]`);
  }
  return config;
}

/** Refuses a flag whose feature is not built, unless it is left at its default. */
function checkBuilt(spec: FlagSpec, value: string): void {
  if (!spec.built && normalize(spec, value) !== normalize(spec, spec.default)) {
    throw new ConfigError(`--${spec.name} is not supported yet by tetcd`);
  }
}

function normalize(spec: FlagSpec, value: string): string {
  if (spec.kind === "bool") return String(parseGoBool(value));
  if (spec.kind === "duration") return String(parseGoDurationMs(value));
  if (spec.kind === "int" || spec.kind === "uint" || spec.kind === "uint32") return String(parseGoInteger(value, spec.kind === "int"));
  return value;
}

function peerTlsConfig(get: (name: string) => string): PeerTlsConfig | undefined {
  const certFile = get("peer-cert-file");
  const keyFile = get("peer-key-file");
  if (certFile === "" && keyFile === "") return undefined;
  if (certFile === "" || keyFile === "") throw new ConfigError(`KeyFile and CertFile must both be present[key: ${keyFile}, cert: ${certFile}]`);
  const trustedCaFile = get("peer-trusted-ca-file");
  return { certFile, keyFile, trustedCaFile: trustedCaFile === "" ? undefined : trustedCaFile, clientCertAuth: parseGoBool(get("peer-client-cert-auth")) === true };
}

/** --cipher-suites as OpenSSL names; etcd checks the names at start whether or not TLS is in use. */
function cipherSuites(text: string): string[] {
  try {
    return openSslCipherSuites(splitList(text));
  } catch (error) {
    if (error instanceof UnknownCipherSuiteError) throw new ConfigError(error.message);
    throw error;
  }
}

function clientTlsConfig(get: (name: string) => string, dataDir: string, listenClientUrls: readonly URL[], ciphers: string[]): ClientTlsConfig | undefined {
  const isSet = (name: string): boolean => parseGoBool(get(name)) === true;
  const certFile = get("cert-file");
  const keyFile = get("key-file");
  if (certFile === "" && keyFile === "") {
    if (!isSet("auto-tls")) return undefined;
    const directory = join(dataDir, "fixtures", "client");
    // etcd passes each URL's host without its port: a name or an IP address.
    const hosts = listenClientUrls.map((url) => url.hostname.replace(/^\[(.*)\]$/, "$1"));
    const selfSigned = { directory, hosts: [...new Set(hosts)] };
    return { certFile: join(directory, "cert.pem"), keyFile: join(directory, "key.pem"), trustedCaFile: undefined, clientCertAuth: false, crlFile: undefined, allowedHostname: undefined, ciphers, selfSigned };
  }
  if (certFile === "" || keyFile === "") throw new ConfigError(`KeyFile and CertFile must both be present[key: ${keyFile}, cert: ${certFile}]`);
  const optional = (name: string): string | undefined => (get(name) === "" ? undefined : get(name));
  return {
    certFile,
    keyFile,
    trustedCaFile: optional("trusted-ca-file"),
    clientCertAuth: isSet("client-cert-auth"),
    crlFile: optional("client-crl-file"),
    allowedHostname: optional("client-cert-allowed-hostname"),
    ciphers,
    selfSigned: undefined,
  };
}

/** What etcd checks of the cluster flags before starting. */
function checkCluster(config: ServerConfig): void {
  for (const url of config.listenClientUrls) {
    if ((url.protocol === "https:" || url.protocol === "unixs:") && config.clientTls === undefined) {
      throw new ConfigError(`TLS key/cert (--cert-file, --key-file) must be provided for client url ${url.protocol}//${url.host} with HTTPS scheme`);
    }
  }
  for (const url of config.listenPeerUrls) {
    if (url.protocol === "unix:" || url.protocol === "unixs:") throw new ConfigError(`unix socket peer listener ${url.href} is not supported yet by tetcd`);
    if (url.protocol === "https:" && config.peerTls === undefined) throw new ConfigError(`cannot listen on TLS for ${url.origin}: KeyFile and CertFile are not presented`);
  }
  if (config.peerTls !== undefined) return;
  for (const urls of config.initialCluster.values()) {
    for (const url of urls) {
      if (url.startsWith("https:")) throw new ConfigError(`TLS peer URL ${url} without --peer-cert-file and --peer-key-file is not supported yet by tetcd`);
    }
  }
}

/** --auth-token: etcd's `simple`, or `jwt,…` with its options; anything else is refused as etcd refuses it. */
function authJwtOptions(text: string): JwtOptions | undefined {
  const kind = text.split(",")[0];
  if (kind === "simple") return undefined;
  if (kind !== "jwt") throw new ConfigError(`unknown token type: ${text}`);
  try {
    return parseJwtOptions(text, parseGoDurationMs);
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
}

/** etcd's defaults stand for a setting left at zero or below. */
function positiveOr(value: number, fallback: number): number {
  return value > 0 ? value : fallback;
}

function splitList(text: string): string[] {
  return text.split(",").map((item) => item.trim()).filter((item) => item !== "");
}

/** The URLs of a `urls` flag, which its syntax check has let through. */
function parseUrls(text: string): URL[] {
  return splitList(text).map((item) => new URL(item));
}

export function parseInitialCluster(text: string): Map<string, string[]> {
  const cluster = new Map<string, string[]>();
  for (const item of splitList(text)) {
    const separator = item.indexOf("=");
    if (separator <= 0) throw new ConfigError(`invalid value "${text}" for --initial-cluster`);
    const name = item.slice(0, separator);
    cluster.set(name, [...(cluster.get(name) ?? []), item.slice(separator + 1)]);
  }
  return cluster;
}

/** Names of every flag, for help output. */
export function flagNames(): string[] {
  return flagSpecs.map((spec) => spec.name);
}
