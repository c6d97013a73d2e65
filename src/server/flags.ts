/**
 * Every flag etcd 3.4 accepts, with etcd's defaults. `built: false` marks a
 * feature tetcd does not have yet: setting such a flag to anything but its
 * default stops the server at start with a "not supported yet" error, so that
 * nothing is silently ignored.
 */
/** `uint` is an unsigned flag of etcd's: a negative value is a parse error there. */
/** `uint32` is etcd's own 32-bit flag type, which reports Go's strconv error as it is. `urls` is a comma-separated list of URLs, checked as etcd's flag checks them; `choice` one of `choices`. */
export type FlagKind = "string" | "int" | "uint" | "uint32" | "bool" | "duration" | "urls" | "choice";

export interface FlagSpec {
  name: string;
  kind: FlagKind;
  default: string;
  built: boolean;
  /** The values a `choice` flag takes. */
  choices?: readonly string[];
}

function flag(name: string, kind: FlagKind, defaultValue: string, built = true): FlagSpec {
  return { name, kind, default: defaultValue, built };
}

function choice(name: string, choices: readonly string[], defaultValue: string, built = true): FlagSpec {
  return { name, kind: "choice", default: defaultValue, built, choices };
}

export const flagSpecs: readonly FlagSpec[] = [
  // The command itself
  flag("config-file", "string", ""),
  flag("version", "bool", "false"),
  // Member
  flag("name", "string", "default"),
  flag("data-dir", "string", ""),
  flag("wal-dir", "string", ""),
  flag("snapshot-count", "uint", "100000"),
  flag("heartbeat-interval", "uint", "100"),
  flag("election-timeout", "uint", "1000"),
  flag("initial-election-tick-advance", "bool", "true"),
  flag("listen-peer-urls", "urls", "http://localhost:2380"),
  flag("listen-client-urls", "urls", "http://localhost:2379"),
  // tetcd writes no snapshot files (the backend is the snapshot): there are none for --max-snapshots to bound.
  flag("max-snapshots", "uint", "5"),
  flag("max-wals", "uint", "5"),
  flag("quota-backend-bytes", "int", "0"),
  flag("backend-batch-interval", "duration", "0s"),
  flag("backend-batch-limit", "int", "0"),
  flag("max-txn-ops", "uint", "128"),
  flag("max-request-bytes", "uint", "1572864"),
  flag("max-concurrent-streams", "uint32", "4294967295"),
  flag("grpc-keepalive-min-time", "duration", "5s", false),
  flag("grpc-keepalive-interval", "duration", "2h", false),
  flag("grpc-keepalive-timeout", "duration", "20s", false),
  // Clustering: a single-member cluster of this member is what is built so far.
  flag("initial-advertise-peer-urls", "urls", "http://localhost:2380"),
  flag("initial-cluster", "string", ""),
  choice("initial-cluster-state", ["new", "existing"], "new"),
  flag("initial-cluster-token", "string", "etcd-cluster"),
  flag("advertise-client-urls", "urls", "http://localhost:2379"),
  flag("discovery", "string", "", false),
  choice("discovery-fallback", ["exit", "proxy"], "proxy", false),
  flag("discovery-proxy", "string", "", false),
  flag("discovery-srv", "string", "", false),
  flag("discovery-srv-name", "string", "", false),
  flag("strict-reconfig-check", "bool", "true"),
  flag("pre-vote", "bool", "false"),
  flag("auto-compaction-retention", "string", "0"),
  flag("auto-compaction-mode", "string", "periodic"),
  flag("enable-v2", "bool", "false"),
  flag("enable-grpc-gateway", "bool", "true"),
  // Security
  flag("cert-file", "string", ""),
  flag("key-file", "string", ""),
  flag("client-cert-auth", "bool", "false"),
  flag("client-crl-file", "string", ""),
  flag("client-cert-allowed-hostname", "string", ""),
  flag("trusted-ca-file", "string", ""),
  flag("auto-tls", "bool", "false"),
  flag("peer-cert-file", "string", ""),
  flag("peer-key-file", "string", ""),
  flag("peer-client-cert-auth", "bool", "false"),
  flag("peer-trusted-ca-file", "string", ""),
  flag("peer-cert-allowed-cn", "string", "", false),
  flag("peer-cert-allowed-hostname", "string", "", false),
  flag("peer-auto-tls", "bool", "false", false),
  flag("peer-crl-file", "string", "", false),
  flag("cipher-suites", "string", ""),
  flag("cors", "urls", "*"),
  flag("host-whitelist", "string", "*", false),
  // Auth
  flag("auth-token", "string", "simple"),
  flag("bcrypt-cost", "uint", "10"),
  flag("auth-token-ttl", "uint", "300"),
  // Profiling and monitoring
  flag("enable-pprof", "bool", "false", false),
  flag("metrics", "string", "basic"),
  flag("listen-metrics-urls", "urls", ""),
  // Logging
  flag("logger", "string", "capnslog"),
  flag("log-outputs", "string", "default"),
  flag("log-output", "string", ""),
  flag("log-level", "string", "info"),
  flag("debug", "bool", "false"),
  flag("log-package-levels", "string", "", false),
  // v2 proxy
  choice("proxy", ["off", "readonly", "on"], "off", false),
  flag("proxy-failure-wait", "uint", "5000", false),
  flag("proxy-refresh-interval", "uint", "30000", false),
  flag("proxy-dial-timeout", "uint", "1000", false),
  flag("proxy-write-timeout", "uint", "5000", false),
  flag("proxy-read-timeout", "uint", "0", false),
  // Experimental
  flag("experimental-initial-corrupt-check", "bool", "false", false),
  flag("experimental-corrupt-check-time", "duration", "0s", false),
  flag("experimental-enable-v2v3", "string", "", false),
  flag("experimental-backend-bbolt-freelist-type", "string", "array"),
  flag("experimental-enable-lease-checkpoint", "bool", "false"),
  // etcd 3.5's; 3.4 checkpoints every 5 minutes.
  flag("experimental-lease-checkpoint-interval", "duration", "5m"),
  flag("experimental-compaction-batch-limit", "int", "1000"),
  flag("experimental-peer-skip-client-san-verification", "bool", "false", false),
  flag("experimental-watch-progress-notify-interval", "duration", "10m"),
  flag("experimental-warning-apply-duration", "duration", "100ms", false),
  flag("force-new-cluster", "bool", "false"),
  flag("unsafe-no-fsync", "bool", "false"),
  // tetcd's own: the built-in dashboard at /dashboard on the client port.
  flag("dashboard", "bool", "true"),
];

export const flagsByName = new Map(flagSpecs.map((spec) => [spec.name, spec]));
