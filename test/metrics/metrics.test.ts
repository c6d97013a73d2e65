import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { etcdctl, freePort, startEtcd, startTetcd, type ServerProcess } from "../support/processes.js";

/**
 * `/metrics` beside etcd 3.4's: the same workload on both, then every metric
 * family tetcd shares with etcd must have etcd's type and label names, the
 * counts that the workload decides must be equal, and `promtool check
 * metrics` (Debian's prometheus package) must find nothing in tetcd's
 * exposition that it does not also find in etcd's own.
 */

interface Family {
  type: string;
  labelNames: Set<string>;
  samples: Map<string, number>;
}

function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  for (const line of text.split("\n")) {
    const typeLine = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (typeLine !== null) {
      families.set(typeLine[1]!, { type: typeLine[2]!, labelNames: new Set(), samples: new Map() });
      continue;
    }
    if (line === "" || line.startsWith("#")) continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)/.exec(line);
    if (sample === null) throw new Error(`unparsable sample: ${line}`);
    const [, name, labels = "", value] = sample;
    const family = families.get(name!) ?? families.get(name!.replace(/_(bucket|sum|count)$/, ""));
    if (family === undefined) continue;
    for (const match of labels.matchAll(/([a-zA-Z_]+)="/g)) if (match[1] !== "le" && match[1] !== "quantile") family.labelNames.add(match[1]!);
    family.samples.set(canonical(`${name}${labels}`), Number(value));
  }
  return families;
}

/** A sample's name with its labels in sorted order (Go's client sorts them, prom-client keeps their declared order). */
function canonical(sample: string): string {
  const match = /^([^{]*)\{(.*)\}$/.exec(sample);
  if (match === null) return sample;
  const pairs = [...match[2]!.matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)].map((pair) => `${pair[1]}="${pair[2]}"`).sort();
  return `${match[1]}{${pairs.join(",")}}`;
}

async function scrape(endpoint: string, path = "/metrics"): Promise<{ status: number; text: string }> {
  const response = await fetch(`http://${endpoint}${path}`);
  return { status: response.status, text: await response.text() };
}

/** The same client traffic for both servers. */
function workload(endpoint: string): void {
  for (let index = 0; index < 5; index++) assert.equal(etcdctl(endpoint, ["put", `metric-key-${index}`, "value"]).status, 0);
  assert.equal(etcdctl(endpoint, ["get", "metric-key-0"]).status, 0);
  assert.equal(etcdctl(endpoint, ["get", "metric-key", "--prefix"]).status, 0);
  assert.equal(etcdctl(endpoint, ["del", "metric-key-4"]).status, 0);
  assert.equal(etcdctl(endpoint, ["txn"], 'value("metric-key-0") = "value"\n\nput metric-key-9 v\nget metric-key-1\n\n\n').status, 0);
  assert.equal(etcdctl(endpoint, ["endpoint", "health"]).status, 0);
}

/** promtool's complaints, one a line, or a parse failure. */
function promtoolComplaints(text: string): { parsed: boolean; complaints: string[] } {
  const result = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8", timeout: 20_000 });
  const output = `${result.stdout}${result.stderr}`;
  return { parsed: (result.status === 0 || result.status === 3) && !output.includes("error while linting"), complaints: output.split("\n").filter((line) => line.trim() !== "") };
}

describe("/metrics beside etcd 3.4", { timeout: 120_000 }, () => {
  let etcd: ServerProcess;
  let tetcd: ServerProcess;
  let metricsPort: number;
  let etcdFamilies: Map<string, Family>;
  let tetcdFamilies: Map<string, Family>;
  let tetcdText: string;
  let etcdText: string;

  before(async () => {
    metricsPort = await freePort();
    [etcd, tetcd] = await Promise.all([startEtcd(), startTetcd({ extraArgs: ["--listen-metrics-urls", `http://127.0.0.1:${metricsPort}`] })]);
    workload(etcd.endpoint);
    workload(tetcd.endpoint);
    for (const server of [etcd, tetcd]) assert.equal((await scrape(server.endpoint, "/health")).status, 200);
    [etcdText, tetcdText] = await Promise.all([scrape(etcd.endpoint).then((reply) => reply.text), scrape(tetcd.endpoint).then((reply) => reply.text)]);
    etcdFamilies = parseExposition(etcdText);
    tetcdFamilies = parseExposition(tetcdText);
  });
  after(async () => {
    await Promise.all([etcd?.stop(), tetcd?.stop()]);
  });

  test("the families an etcd dashboard reads are there", () => {
    const expected = [
      "etcd_server_has_leader", "etcd_server_is_leader", "etcd_server_is_learner", "etcd_server_leader_changes_seen_total",
      "etcd_server_proposals_committed_total", "etcd_server_proposals_applied_total", "etcd_server_proposals_pending", "etcd_server_proposals_failed_total",
      "etcd_server_quota_backend_bytes", "etcd_server_id", "etcd_server_version", "etcd_cluster_version", "etcd_server_health_success", "etcd_server_health_failures",
      "etcd_disk_wal_fsync_duration_seconds", "etcd_disk_backend_commit_duration_seconds",
      "etcd_mvcc_db_total_size_in_bytes", "etcd_mvcc_db_total_size_in_use_in_bytes", "etcd_mvcc_put_total", "etcd_mvcc_delete_total", "etcd_mvcc_range_total", "etcd_mvcc_txn_total",
      "etcd_debugging_mvcc_keys_total", "etcd_debugging_mvcc_watcher_total", "etcd_debugging_mvcc_slow_watcher_total",
      "etcd_network_client_grpc_sent_bytes_total", "etcd_network_client_grpc_received_bytes_total",
      "grpc_server_started_total", "grpc_server_handled_total", "grpc_server_msg_received_total", "grpc_server_msg_sent_total",
      "process_resident_memory_bytes", "process_open_fds",
    ];
    assert.deepEqual(expected.filter((name) => !tetcdFamilies.has(name)), []);
    assert.deepEqual(expected.filter((name) => !etcdFamilies.has(name)), [], "each is one of etcd's own names");
  });

  test("every family tetcd shares with etcd has etcd's type and label names", () => {
    const differences: string[] = [];
    let shared = 0;
    for (const [name, ours] of tetcdFamilies) {
      const theirs = etcdFamilies.get(name);
      if (theirs === undefined) continue;
      shared++;
      if (ours.type !== theirs.type) differences.push(`${name}: type ${ours.type}, etcd ${theirs.type}`);
      const labels = (family: Family): string => [...family.labelNames].sort().join(",");
      if (labels(ours) !== labels(theirs)) differences.push(`${name}: labels {${labels(ours)}}, etcd {${labels(theirs)}}`);
    }
    assert.deepEqual(differences, []);
    assert.ok(shared >= 40, `${shared} families shared with etcd`);
  });

  test("the counts the workload decides are etcd's", () => {
    const value = (families: Map<string, Family>, sample: string): number | undefined => {
      for (const family of families.values()) if (family.samples.has(canonical(sample))) return family.samples.get(canonical(sample));
      return undefined;
    };
    for (const sample of [
      "etcd_mvcc_put_total",
      "etcd_mvcc_delete_total",
      "etcd_mvcc_txn_total",
      "etcd_debugging_mvcc_keys_total",
      "etcd_server_has_leader",
      "etcd_server_is_leader",
      'grpc_server_handled_total{grpc_type="unary",grpc_service="etcdserverpb.KV",grpc_method="Put",grpc_code="OK"}',
      'grpc_server_handled_total{grpc_type="unary",grpc_service="etcdserverpb.KV",grpc_method="Txn",grpc_code="OK"}',
      'grpc_server_handled_total{grpc_type="unary",grpc_service="etcdserverpb.KV",grpc_method="Put",grpc_code="InvalidArgument"}',
      'grpc_server_started_total{grpc_type="unary",grpc_service="etcdserverpb.KV",grpc_method="DeleteRange"}',
      "etcd_server_health_success",
    ]) {
      const expected = value(etcdFamilies, sample);
      assert.notEqual(expected, undefined, `etcd has ${sample}`);
      assert.equal(value(tetcdFamilies, sample), expected, sample);
    }
    assert.ok((value(tetcdFamilies, "etcd_disk_wal_fsync_duration_seconds_count") ?? 0) >= 7, "WAL writes are timed");
  });

  test("promtool parses the exposition and finds nothing it does not find in etcd's", () => {
    const ours = promtoolComplaints(tetcdText);
    const theirs = promtoolComplaints(etcdText);
    assert.ok(ours.parsed, ours.complaints.join("\n"));
    // Node's process metrics come from prom-client; their names are its own.
    const unexplained = ours.complaints.filter((line) => !theirs.complaints.includes(line) && !line.startsWith("nodejs_"));
    assert.deepEqual(unexplained, []);
  });

  test("--listen-metrics-urls serves /metrics and /health, and nothing else, as etcd does", async () => {
    const endpoint = `127.0.0.1:${metricsPort}`;
    const metrics = await scrape(endpoint);
    assert.equal(metrics.status, 200);
    assert.ok(parseExposition(metrics.text).has("etcd_server_has_leader"));
    assert.deepEqual(await scrape(endpoint, "/health"), { status: 200, text: '{"health":"true"}' });
    assert.equal((await scrape(endpoint, "/version")).status, 404);
  });
});
