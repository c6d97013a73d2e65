import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { ConfigError, defaultQuotaBackendBytes, loadConfig, type FlagNotice } from "../../src/server/config.js";
import { startTetcd, temporaryDirectory, tetcdBin } from "../support/processes.js";

describe("configuration", () => {
  test("etcd's defaults, with the data dir named after the member", () => {
    const config = loadConfig([], {});
    assert.equal(config.name, "default");
    assert.equal(config.dataDir, "default.tetcd");
    assert.deepEqual(config.listenClientUrls.map(String), ["http://localhost:2379/"]);
    assert.equal(config.quotaBackendBytes, defaultQuotaBackendBytes);
    assert.equal(config.maxRequestBytes, 1_572_864);
    assert.equal(config.maxTxnOps, 128);
    assert.equal(config.snapshotCount, 100_000);
    assert.equal(config.backendBatchIntervalMs, 100);
    assert.equal(config.watchProgressNotifyIntervalMs, 600_000);
  });

  test("flags in both spellings, and environment variables as etcd's pkg/flags reads them", () => {
    const notices: FlagNotice[] = [];
    const config = loadConfig(["--name=m1", "-max-txn-ops", "7", "--experimental-watch-progress-notify-interval", "1m30s"], { ETCD_SNAPSHOT_COUNT: "42", ETCD_FOO: "1", ETCD_DEBUG: "", ETCDCTL_API: "3", PATH: "/bin" }, notices);
    assert.equal(config.name, "m1");
    assert.equal(config.dataDir, "m1.tetcd");
    assert.equal(config.maxTxnOps, 7);
    assert.equal(config.snapshotCount, 42, "ETCD_SNAPSHOT_COUNT is read");
    assert.equal(config.watchProgressNotifyIntervalMs, 90_000);
    assert.equal(config.logLevel, "info", "an empty variable sets nothing");
    assert.deepEqual(notices, [
      { level: "I", text: "recognized and used environment variable ETCD_SNAPSHOT_COUNT=42" },
      { level: "W", text: "unrecognized environment variable ETCD_FOO=1" },
      { level: "W", text: "unrecognized environment variable ETCD_DEBUG=" },
    ]);
  });

  test("a variable that a command-line flag shadows refuses the start, as in etcd 3.4", () => {
    assert.throws(
      () => loadConfig(["--name", "m1"], { ETCD_NAME: "from-env" }),
      (error) => error instanceof ConfigError && error.exitCode === 1 && error.message === 'conflicting environment variable "ETCD_NAME" is shadowed by corresponding command-line flag (either unset environment variable or disable flag)',
    );
  });

  test("values in Go's syntax: base prefixes, underscores, boolean spellings, signed durations", () => {
    const config = loadConfig(["--max-txn-ops=0x10", "--max-request-bytes", "1_000_000", "--strict-reconfig-check=F", "-experimental-enable-lease-checkpoint=T", "--experimental-watch-progress-notify-interval=.5s", "--backend-batch-interval=-1s", "--snapshot-count=0"], {});
    assert.equal(config.maxTxnOps, 16);
    assert.equal(config.maxRequestBytes, 1_000_000);
    assert.equal(config.strictReconfigCheck, false);
    assert.equal(config.leaseCheckpointEnabled, true);
    assert.equal(config.watchProgressNotifyIntervalMs, 500);
    assert.equal(config.backendBatchIntervalMs, 100, "a duration at or below zero stands for etcd's default");
    assert.equal(config.snapshotCount, 100_000, "--snapshot-count=0 stands for etcd's default");
  });

  test("settings that shape the server reach it", () => {
    const config = loadConfig(["--experimental-compaction-batch-limit", "3", "--max-concurrent-streams", "50", "--enable-grpc-gateway=false", "--log-outputs", "stdout"], {});
    assert.equal(config.compactionBatchLimit, 3);
    assert.equal(config.maxConcurrentStreams, 50);
    assert.equal(config.enableGrpcGateway, false);
    assert.deepEqual(config.logOutputs, ["stdout"]);
  });

  test("a YAML config file, which replaces flags and environment as in etcd", () => {
    const directory = temporaryDirectory("tetcd-config");
    try {
      const path = join(directory, "etcd.yaml");
      writeFileSync(path, ["name: from-file", `data-dir: ${join(directory, "data")}`, "listen-client-urls: http://127.0.0.1:23999", "quota-backend-bytes: 1048576", ""].join("\n"));
      const config = loadConfig(["--config-file", path, "--name", "ignored"], { ETCD_MAX_TXN_OPS: "9" });
      assert.equal(config.name, "from-file");
      assert.equal(config.dataDir, join(directory, "data"));
      assert.deepEqual(config.listenClientUrls.map(String), ["http://127.0.0.1:23999/"]);
      assert.equal(config.quotaBackendBytes, 1_048_576);
      assert.equal(config.maxTxnOps, 128, "environment is ignored when a config file is given");
      writeFileSync(path, "no-such-field: 1\n");
      assert.throws(() => loadConfig(["--config-file", path], {}), (error) => error instanceof ConfigError && /unknown field "no-such-field"/.test(error.message));
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });

  test("bad input is refused with a clear message", () => {
    const refused = (argv: string[], environment: NodeJS.ProcessEnv, pattern: RegExp) =>
      assert.throws(() => loadConfig(argv, environment), (error) => error instanceof ConfigError && pattern.test(error.message), argv.join(" "));
    refused(["--no-such-flag", "1"], {}, /flag provided but not defined: -no-such-flag/);
    refused([], { ETCD_SNAPSHOT_COUNT: "many" }, /^invalid value "many" for ETCD_SNAPSHOT_COUNT: parse error$/);
    refused(["--max-txn-ops", "many"], {}, /invalid value "many" for flag -max-txn-ops/);
    refused(["--max-wals", "-1"], {}, /invalid value "-1" for flag -max-wals: parse error/);
    refused(["--snapshot-count", "-5"], {}, /invalid value "-5" for flag -snapshot-count: parse error/);
    refused(["--initial-cluster-state", "sideways"], {}, /initial-cluster-state/);
    refused(["--listen-client-urls", "ftp://127.0.0.1:1"], {}, /URL scheme must be http, https, unix, or unixs/);
    refused(["--election-timeout", "300"], {}, /at least as 5 times as --heartbeat-interval/);
  });

  test("a feature not built yet stops the start instead of being ignored, security flags included", () => {
    for (const argv of [
      ["--peer-crl-file", "peers.crl"],
      ["--peer-auto-tls"],
      ["--experimental-initial-corrupt-check"],
      ["--initial-cluster", "a=https://127.0.0.1:1,b=https://127.0.0.1:2", "--name", "a"],
      ["--peer-crl-file", "peer.crl"],
      ["--discovery-srv", "example.com"],
      ["--grpc-keepalive-interval", "1m"],
      ["--log-outputs", "/var/log/etcd.log"],
    ]) {
      assert.throws(() => loadConfig(argv, {}), (error) => error instanceof ConfigError && /not supported yet/.test(error.message), argv.join(" "));
    }
    // Left at their defaults, such flags are accepted.
    assert.equal(loadConfig(["--peer-auto-tls=false", "--auto-compaction-retention", "0"], {}).name, "default");
  });

  test("auto-compaction: etcd 3.4's retention forms per mode, and its error for a bad one", () => {
    assert.equal(loadConfig(["--auto-compaction-retention", "1h"], {}).autoCompactionRetention, 3_600_000);
    assert.equal(loadConfig(["--auto-compaction-retention", "2"], {}).autoCompactionRetention, 7_200_000);
    const revision = loadConfig(["--auto-compaction-mode", "revision", "--auto-compaction-retention", "1000"], {});
    assert.deepEqual([revision.autoCompactionMode, revision.autoCompactionRetention], ["revision", 1000]);
    assert.equal(loadConfig([], {}).autoCompactionRetention, 0);
    assert.throws(() => loadConfig(["--auto-compaction-retention", "x"], {}), (error) => error instanceof ConfigError && error.message === 'error parsing CompactionRetention: time: invalid duration "x"');
  });

  test("peer TLS: https peer URLs need the peer certificate and key", () => {
    const tlsFlags = ["--peer-cert-file", "m.crt", "--peer-key-file", "m.key", "--peer-trusted-ca-file", "ca.crt", "--peer-client-cert-auth"];
    const https = ["--listen-peer-urls", "https://127.0.0.1:2380", "--initial-advertise-peer-urls", "https://127.0.0.1:2380"];
    const config = loadConfig([...https, ...tlsFlags], {});
    assert.deepEqual(config.peerTls, { certFile: "m.crt", keyFile: "m.key", trustedCaFile: "ca.crt", clientCertAuth: true });
    assert.deepEqual(config.initialCluster.get("default"), ["https://127.0.0.1:2380"]);
    assert.equal(loadConfig([], {}).peerTls, undefined);
    const refused = (argv: string[], pattern: RegExp): void => {
      assert.throws(() => loadConfig(argv, {}), (error) => error instanceof ConfigError && pattern.test(error.message), argv.join(" "));
    };
    refused(https, /cannot listen on TLS for https:\/\/127.0.0.1:2380: KeyFile and CertFile are not presented/);
    refused(["--peer-cert-file", "m.crt", ...https], /KeyFile and CertFile must both be present/);
  });
});

describe("the tetcd command", { timeout: 60_000 }, () => {
  test("an unknown flag exits with status 2 and etcd's message", () => {
    const result = spawnSync(process.execPath, [tetcdBin, "--bogus"], { encoding: "utf8", timeout: 20_000 });
    assert.equal(result.status, 2);
    assert.match(result.stderr, /flag provided but not defined: -bogus/);
  });

  test("with --logger zap, logs are JSON lines, with etcd's readiness messages", async () => {
    const server = await startTetcd({ extraArgs: ["--logger", "zap"] });
    try {
      const deadline = Date.now() + 10_000;
      while (!server.output().includes("ready to serve client requests") && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      const entries = server
        .output()
        .split("\n")
        .filter((line) => line.trim() !== "")
        .map((line) => JSON.parse(line) as { level: string; ts: string; msg: string });
      const messages = entries.map((entry) => entry.msg);
      for (const expected of ["published local member to cluster through raft", "enabled capabilities for version", "ready to serve client requests"]) {
        assert.ok(messages.includes(expected), `logs include "${expected}"`);
      }
      assert.ok(entries.every((entry) => typeof entry.level === "string" && !Number.isNaN(Date.parse(entry.ts))));
    } finally {
      await server.stop();
    }
  });
});

describe("auth settings", () => {
  test("--auth-token takes simple or etcd's jwt option string, and refuses anything else", () => {
    assert.equal(loadConfig([], {}).authToken, "simple");
    const jwt = loadConfig(["--auth-token", "jwt,pub-key=a.pub,priv-key=a.key,sign-method=ES256,ttl=2m", "--auth-token-ttl", "60", "--bcrypt-cost", "12"], {});
    assert.equal(jwt.authToken, "jwt");
    assert.deepEqual(jwt.authJwt, { signMethod: "ES256", publicKeyFile: "a.pub", privateKeyFile: "a.key", ttlMs: 120_000 });
    assert.equal(jwt.authTokenTtlSeconds, 60);
    assert.equal(jwt.bcryptCost, 12);
    assert.throws(() => loadConfig(["--auth-token", "jwt,pub-key=a.pub,sign-method=HS1"], {}), /invalid signing method: HS1/);
    assert.throws(() => loadConfig(["--auth-token", "opaque"], {}), /unknown token type: opaque/);
  });
});
