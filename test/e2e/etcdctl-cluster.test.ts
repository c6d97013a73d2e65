// Cluster commands through the real etcdctl 3.4 against three members: member
// list, add, promote, update and remove, endpoint status, health and hashkv
// with explicit endpoints, and move-leader, on a 3-member etcd and a 3-member
// tetcd fed the same script, outputs compared.
//
// Allowed to differ, and replaced by the same placeholders on both sides:
// member ids (<m1-id>) and the cluster id (<cluster-id>), each member's URLs
// and endpoints (<m1-client>, <m1-peer>, <m1-endpoint>), raft term and index,
// DB size, health timings; and the order of rows that etcd sorts by member id
// (a random number) or prints as answers arrive. Whether rows come sorted by id
// is itself compared ("order: by id"). etcdctl's log line for each retry of an
// Unavailable answer is kept once: the number of retries is client timing.
// Members that are added and never started get the same fixed URLs on both
// sides (http://127.0.0.1x:2380, where nothing listens).
//
// Both clusters are led by m0 when the script starts, and every step that
// changes the leader waits until all members follow the same one, so that "is
// leader" and the leader column are comparable. etcd refuses reconfiguration
// for 5 s after a voter connects ("etcdserver: unhealthy cluster"): the steps
// that may meet that window retry on that error, on each side, until it passes.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { parseBigJson, startCluster, type Cluster, type ClusterMember } from "../support/cluster.js";
import { kindOf, normalize, normalizeTableCells, requireReferenceBinaries, runCtlAsync, type CtlResult, type OutputKind } from "./harness.js";

/** One step of the script, written with placeholders that each side resolves to its own values. */
interface Step {
  /** etcdctl arguments; `<mN-id>`, `<mN-peer>`, `<mN-client>`, `<mN-endpoint>` are resolved per side. */
  readonly args: readonly string[];
  /** Members whose client endpoints etcdctl is given, in this order. */
  readonly on: readonly string[];
  /** stderr texts meaning "not yet" (a transient refusal): the step is retried on that side until it gives something else. */
  readonly retryOn?: readonly string[];
  /** The step adds a member by this name: its id is learned from the output. */
  readonly adds?: string;
}

/** What is compared for one step on one side. */
interface Outcome {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
  /** For outputs listing members: whether they came sorted by member id, as etcd sorts them. */
  readonly order?: string;
}

interface KnownMember {
  readonly name: string;
  /** Hex, as etcdctl prints ids. */
  readonly id: string;
  readonly peerUrls: readonly string[];
}

const all = ["m0", "m1", "m2"] as const;
const unhealthy = "etcdserver: unhealthy cluster";
const notInSync = "etcdserver: can only promote a learner member which is in sync with leader";
const retryForMs = 15_000;
const retryPauseMs = 200;
const unknownId = "ffff";

/** One cluster (etcd or tetcd) and what the script learned about it. */
class Side {
  clusterId = "";
  /** Members added by a step and never started: they are not in `cluster.members`. */
  readonly added = new Map<string, KnownMember>();

  constructor(readonly cluster: Cluster) {}

  member(name: string): ClusterMember {
    const member = this.cluster.members.find((candidate) => candidate.name === name);
    if (member === undefined) throw new Error(`${this.cluster.kind}: no member ${name}`);
    return member;
  }

  known(): KnownMember[] {
    const started = this.cluster.members.flatMap((member) => (member.id === undefined ? [] : [{ name: member.name, id: member.id, peerUrls: [member.advertisedPeerUrl] }]));
    return [...started, ...this.added.values()];
  }

  idOf(name: string): string {
    const member = this.known().find((candidate) => candidate.name === name);
    if (member === undefined) throw new Error(`${this.cluster.kind}: no id known for ${name}`);
    return member.id;
  }

  /** An argument with its placeholders replaced by this side's values. */
  resolve(arg: string): string {
    return arg.replace(/<(m\d+)-(id|peer|client|endpoint)>/g, (_, name: string, what: string) => {
      if (what === "id") return this.idOf(name);
      const member = this.member(name);
      return what === "peer" ? member.advertisedPeerUrl : what === "client" ? member.clientUrl : member.endpoint;
    });
  }

  /** This side's URLs, endpoints and ids replaced by placeholders; decimal ids are quoted in JSON. */
  substitute(text: string, json: boolean): string {
    let out = text;
    for (const member of this.cluster.members) {
      const peerEndpoint = new URL(member.peerUrl).host;
      for (const [literal, placeholder] of [
        [member.clientUrl, `<${member.name}-client>`],
        [member.advertisedPeerUrl, `<${member.name}-peer>`],
        [member.peerUrl, `<${member.name}-peer>`],
        [member.endpoint, `<${member.name}-endpoint>`],
        [peerEndpoint, `<${member.name}-peer-endpoint>`],
      ] as const) {
        out = out.replace(new RegExp(`${escape(literal)}(?![0-9])`, "g"), placeholder);
      }
    }
    const ids: [string, string][] = this.known().map((member) => [member.id, `<${member.name}-id>`]);
    if (this.clusterId !== "") ids.push([this.clusterId, "<cluster-id>"]);
    for (const [id, placeholder] of ids) {
      out = out.replace(new RegExp(`(?<![0-9a-f])${id}(?![0-9a-f])`, "g"), placeholder);
      out = out.replace(new RegExp(`(?<![0-9])${BigInt(`0x${id}`).toString(10)}(?![0-9])`, "g"), json ? `"${placeholder}"` : placeholder);
    }
    return out;
  }
}

function escape(literal: string): string {
  return literal.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function writeFormat(args: readonly string[]): string {
  const index = args.findIndex((arg) => arg === "-w" || arg === "--write-out");
  return index >= 0 ? (args[index + 1] ?? "simple") : "simple";
}

function describeStep(step: Step): string {
  return `etcdctl --endpoints=${step.on.map((name) => `<${name}-endpoint>`).join(",")} ${step.args.join(" ")}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------
// Ordering: etcd lists members sorted by id, and `endpoint health` prints
// answers as they arrive. Whether a list is sorted by id is recorded, then
// every order is made canonical.

/** The member ids a member-listing output shows, in its order (hex); undefined for other outputs. */
function listedIds(side: Side, stdout: string, format: string): string[] | undefined {
  if (format === "json") {
    const parsed = parseBigJson(stdout.trim() === "" ? "{}" : stdout) as { members?: { ID: string | number }[] };
    return parsed.members?.map((member) => BigInt(member.ID).toString(16));
  }
  if (format === "fields") return [...stdout.matchAll(/^"ID" : (\d+)$/gm)].map((match) => BigInt(match[1]!).toString(16));
  if (format === "table") return [...stdout.matchAll(/^\| +([0-9a-f]+) \|/gm)].map((match) => match[1]!).filter((cell) => cell !== "ID");
  const cluster = /^ETCD_INITIAL_CLUSTER="([^"]*)"$/m.exec(stdout)?.[1];
  if (cluster !== undefined) {
    // name=peer-url entries: the peer URL says which member it is.
    return cluster.split(",").map((entry) => {
      const url = entry.slice(entry.indexOf("=") + 1);
      return side.known().find((member) => member.peerUrls.includes(url))?.id ?? "unknown";
    });
  }
  const lines = stdout.split("\n").filter((line) => /^[0-9a-f]+, (?:un)?started, /.test(line));
  return lines.length === 0 ? undefined : lines.map((line) => line.slice(0, line.indexOf(",")));
}

function orderOf(ids: readonly string[]): string {
  if (ids.includes("unknown")) return "unknown member";
  const values = ids.map((id) => BigInt(`0x${id}`));
  return values.every((value, index) => index === 0 || values[index - 1]! < value) ? "by id" : `not by id: ${ids.join(" ")}`;
}

function sortLines(text: string): string {
  const lines = text.split("\n");
  const last = lines.at(-1) === "" ? lines.pop() : undefined;
  lines.sort();
  if (last !== undefined) lines.push(last);
  return lines.join("\n");
}

/** `normalizeTableCells` output: the border-count line and the header stay first, the rows are sorted. */
function sortTableRows(normalized: string): string {
  const [borders, header, ...rows] = normalized.split("\n").filter((line) => line !== "");
  if (borders === undefined || header === undefined) return normalized;
  return `${[borders, header, ...rows.sort()].join("\n")}\n`;
}

/** `-w fields` of members: the header lines stay first, the member blocks (from each "ID" line) are sorted. */
function sortFieldBlocks(text: string): string {
  const lines = text.split("\n");
  const starts = lines.flatMap((line, index) => (line.startsWith('"ID" : ') ? [index] : []));
  if (starts.length === 0) return text;
  const blocks = starts.map((start, index) => lines.slice(start, starts[index + 1] ?? lines.length).join("\n"));
  // The last block carries the output's final newline: give every block the same ending first.
  const trimmed = blocks.map((block) => block.replace(/\n*$/, ""));
  return `${[lines.slice(0, starts[0]).join("\n"), ...trimmed.sort()].join("\n")}\n`;
}

function sortJsonArray(text: string, key: (item: Record<string, unknown>) => string, pick: (parsed: unknown) => Record<string, unknown>[] | undefined): string {
  if (text.trim() === "") return text;
  let parsed: unknown;
  try {
    parsed = parseBigJson(text);
  } catch {
    return text;
  }
  pick(parsed)?.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  return `${JSON.stringify(parsed)}\n`;
}

// ---------------------------------------------------------------------------
// Normalization of one step's output on one side.

/**
 * etcdctl retries an Unavailable answer (a learner's "rpc not supported for
 * learner") up to 100 times within the command timeout, logging each attempt:
 * how many fit is a matter of client timing. Only the first log line of each
 * retried error is kept; the error itself, and its gRPC code, still compare.
 */
function collapseRetries(stderr: string): string {
  const seen = new Set<string>();
  return stderr
    .split("\n")
    .filter((line) => {
      if (!line.startsWith("{") || !/"attempt":\d+/.test(line)) return true;
      const key = line.replace(/"ts":"[^"]*",?/, "").replace(/"attempt":\d+,?/, "");
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    })
    .join("\n");
}

const tableMasked: Record<string, ReadonlySet<string>> = {
  "endpoint status": new Set(["DB SIZE", "RAFT TERM", "RAFT INDEX", "RAFT APPLIED INDEX"]),
  "endpoint health": new Set(["TOOK"]),
};

function outcome(side: Side, step: Step, raw: CtlResult): Outcome {
  const format = writeFormat(step.args);
  const command = `${step.args[0]} ${step.args[1]}`;
  const text = raw.stdout.toString("utf8");
  const ids = step.args[0] === "member" && raw.status === 0 ? listedIds(side, text, format) : undefined;
  const order = ids !== undefined && ids.length > 1 ? orderOf(ids) : undefined;
  let stdout = side.substitute(text, format === "json");
  if (format === "json" && step.args[0] === "member") {
    stdout = sortJsonArray(stdout, (member) => String(member.ID), (parsed) => (parsed as { members?: Record<string, unknown>[] }).members);
  }
  // A table goes through as text, and is normalized below; `-w json` of endpoint health keeps its kind.
  const kind: OutputKind = format === "table" ? "text" : kindOf({ args: step.args });
  const normalized = normalize({ status: raw.status, stdout: Buffer.from(stdout), stderr: collapseRetries(side.substitute(raw.stderr, false)) }, "\u0000", kind);
  stdout = normalized.stdout;
  let stderr = normalized.stderr;
  if (format === "table") {
    stdout = normalizeTableCells(stdout, tableMasked[command] ?? new Set());
    if (command === "member list" || command === "endpoint health") stdout = sortTableRows(stdout);
  } else if (command === "member list" && format === "simple") {
    stdout = sortLines(stdout);
  } else if (command === "member list" && format === "fields") {
    stdout = sortFieldBlocks(stdout);
  } else if (command === "member add" && format === "simple") {
    // ETCD_INITIAL_CLUSTER lists the members in the response's order: by id (checked above).
    stdout = stdout.replace(/^(ETCD_INITIAL_CLUSTER=")([^"]*)"$/m, (_, prefix: string, list: string) => `${prefix}${list.split(",").sort().join(",")}"`);
  } else if (command === "endpoint health" && format === "json") {
    stdout = sortJsonArray(stdout, (entry) => String(entry.endpoint), (parsed) => (Array.isArray(parsed) ? (parsed as Record<string, unknown>[]) : undefined));
  }
  if (command === "endpoint health") stderr = sortLines(stderr);
  // "Member %16x added to cluster %16x": a shorter id is padded with spaces.
  if (format === "simple") stdout = stdout.replace(/\b(Member|cluster) +</g, "$1 <");
  return order === undefined ? { status: normalized.status, stdout, stderr } : { status: normalized.status, stdout, stderr, order };
}

/** Runs a step on one side, retrying while it answers one of `retryOn`; learns the id of an added member. */
async function run(side: Side, step: Step): Promise<Outcome> {
  const endpoints = step.on.map((name) => side.member(name).endpoint);
  const args = step.args.map((arg) => side.resolve(arg));
  const deadline = Date.now() + retryForMs;
  let raw = await runCtlAsync(endpoints, args);
  while (raw.status !== 0 && (step.retryOn ?? []).some((text) => raw.stderr.includes(text)) && Date.now() < deadline) {
    await sleep(retryPauseMs);
    raw = await runCtlAsync(endpoints, args);
  }
  if (step.adds !== undefined && raw.status === 0) {
    const text = raw.stdout.toString("utf8");
    const decimal = /"member":\{"ID":(\d+)/.exec(text)?.[1];
    const id = decimal !== undefined ? BigInt(decimal).toString(16) : /^Member +([0-9a-f]+) added/m.exec(text)?.[1];
    assert.ok(id !== undefined, `${side.cluster.kind}: no member id in ${JSON.stringify(text)}`);
    const peerUrls = args.find((arg) => arg.startsWith("--peer-urls="))?.slice("--peer-urls=".length).split(",") ?? [];
    side.added.set(step.adds, { name: step.adds, id, peerUrls });
  }
  return outcome(side, step, raw);
}

/** Waits until every running member follows `name`, after moving the leadership there if needed. */
async function leaderBecomes(side: Side, name: string): Promise<void> {
  const target = side.member(name);
  let leader = await side.cluster.waitForLeader({ timeoutMs: 10_000 });
  if (leader !== target) {
    const moved = await runCtlAsync(side.cluster.endpoints(side.cluster.members.filter((member) => member.running)), ["move-leader", side.idOf(name)]);
    assert.equal(moved.status, 0, `${side.cluster.kind}: move-leader to ${name}: ${moved.stderr}`);
    leader = await side.cluster.waitForLeader({ timeoutMs: 10_000 });
  }
  assert.equal(leader.name, name, `${side.cluster.kind}: leader`);
}

async function learnClusterId(side: Side): Promise<void> {
  const listed = await runCtlAsync([side.member("m0").endpoint], ["member", "list", "-w", "json"]);
  assert.equal(listed.status, 0, listed.stderr);
  const header = (parseBigJson(listed.stdout.toString("utf8")) as { header: { cluster_id: string | number } }).header;
  side.clusterId = BigInt(header.cluster_id).toString(16);
}

/** Removes a member that a refused step should not have added (tetcd only, if it accepted), so that both clusters stay alike. */
async function undoAdd(side: Side, name: string): Promise<void> {
  const member = side.added.get(name);
  if (member === undefined) return;
  const removed = await runCtlAsync([side.member("m0").endpoint], ["member", "remove", member.id]);
  assert.equal(removed.status, 0, `${side.cluster.kind}: undoing the add of ${name}: ${removed.stderr}`);
  side.added.delete(name);
}

describe("etcdctl member, endpoint and move-leader on 3 members: tetcd prints what etcd prints", { timeout: 150_000 }, () => {
  let sides: [Side, Side] | undefined;

  before(async () => {
    requireReferenceBinaries();
    const started = await Promise.allSettled([startCluster("etcd", 3), startCluster("tetcd", 3)]);
    const [etcd, tetcd] = started;
    if (etcd.status === "rejected" || tetcd.status === "rejected") {
      await Promise.all(started.map((result) => (result.status === "fulfilled" ? result.value.stop() : undefined)));
      throw etcd.status === "rejected" ? etcd.reason : (tetcd as PromiseRejectedResult).reason;
    }
    sides = [new Side(etcd.value), new Side(tetcd.value)];
    await Promise.all(sides.map(async (side) => {
      await leaderBecomes(side, "m0");
      await learnClusterId(side);
    }));
  });

  after(async () => {
    await Promise.all((sides ?? []).map((side) => side.cluster.stop()));
  });

  function both(): [Side, Side] {
    if (sides === undefined) throw new Error("the clusters did not start");
    return sides;
  }

  /** A compared step. */
  const same = (args: readonly string[], on: readonly string[], options: Omit<Step, "args" | "on"> = {}): void => {
    const step: Step = { args, on, ...options };
    test(describeStep(step), async () => {
      const [etcd, tetcd] = await Promise.all(both().map((side) => run(side, step)));
      assert.deepEqual(tetcd, etcd, `tetcd differs from etcd for: ${describeStep(step)}`);
    });
  };

  /** Something done to both clusters between compared steps. */
  const action = (title: string, body: (side: Side) => Promise<void>): void => {
    test(`both: ${title}`, async () => {
      await Promise.all(both().map(body));
    });
  };

  // -- Three members, m0 leading. --------------------------------------------
  for (const format of ["simple", "table", "json", "fields"]) same(["member", "list", "-w", format], ["m0"]);
  same(["member", "list", "-w", "json"], ["m2"]);
  same(["put", "a", "1"], ["m0"]);
  same(["put", "b", "2"], ["m1"]);
  for (const format of ["simple", "table", "json", "fields"]) same(["endpoint", "status", "-w", format], all);
  for (const format of ["simple", "table", "json"]) same(["endpoint", "health", "-w", format], all);
  for (const format of ["simple", "table", "json"]) same(["endpoint", "hashkv", "-w", format], all);

  // -- move-leader. -----------------------------------------------------------
  same(["move-leader", "<m1-id>"], all);
  action("every member follows m1", (side) => leaderBecomes(side, "m1"));
  same(["endpoint", "status", "-w", "table"], all);
  same(["move-leader", "<m1-id>"], all);
  same(["move-leader", unknownId], all);
  same(["move-leader", "<m2-id>"], ["m0", "m2"]);
  same(["move-leader", "<m0-id>"], ["m2"]);
  same(["move-leader", "zz"], all);

  // -- A learner that never starts. -------------------------------------------
  same(["member", "add", "m3", "--learner", "--peer-urls=http://127.0.0.10:2380"], ["m0"], { retryOn: [unhealthy], adds: "m3" });
  for (const format of ["simple", "table", "json", "fields"]) same(["member", "list", "-w", format], ["m0"]);
  same(["member", "add", "m9", "--learner", "--peer-urls=http://127.0.0.19:2380"], ["m0"], { adds: "m9" });
  action("no second learner was added", (side) => undoAdd(side, "m9"));
  same(["member", "promote", "<m3-id>"], ["m0"]);
  same(["member", "promote", "<m3-id>"], ["m1"]);
  same(["move-leader", "<m3-id>"], all);
  same(["endpoint", "status", "-w", "json"], all);
  same(["member", "remove", "<m3-id>", "-w", "json"], ["m0"]);
  same(["member", "remove", "<m3-id>"], ["m0"]);
  same(["member", "list"], ["m2"]);

  // -- Errors on the three members. -------------------------------------------
  same(["member", "remove", unknownId], ["m0"]);
  same(["member", "remove", unknownId], ["m1"]);
  same(["member", "promote", unknownId], ["m0"]);
  same(["member", "promote", unknownId], ["m1"]);
  same(["member", "promote", "<m2-id>"], ["m0"]);
  same(["member", "promote", "<m2-id>"], ["m1"]);
  same(["member", "add", "m9", "--peer-urls=<m1-peer>"], ["m0"], { adds: "m9" });
  action("no member with a taken URL was added", (side) => undoAdd(side, "m9"));
  same(["member", "add", "m9", "--peer-urls=127.0.0.1:2380"], ["m0"], { adds: "m9" });
  action("no member with a bad URL was added", (side) => undoAdd(side, "m9"));
  same(["member", "update", unknownId, "--peer-urls=http://127.0.0.14:2380"], ["m0"]);
  same(["member", "update", "<m1-id>", "--peer-urls=<m0-peer>"], ["m0"]);

  // -- A learner that starts, catches up and is promoted. ---------------------
  action("m4 joins as a learner and starts", async (side) => {
    const learner = await side.cluster.prepareJoin("m4", { learner: true });
    await learner.start();
  });
  for (const format of ["simple", "table", "json"]) same(["member", "list", "-w", format], ["m0"]);
  same(["member", "list"], ["m4"]);
  same(["endpoint", "status", "-w", "table"], [...all, "m4"]);
  same(["endpoint", "status", "-w", "json"], [...all, "m4"]);
  same(["endpoint", "health"], [...all, "m4"]);
  same(["endpoint", "hashkv"], ["m4"]);
  same(["move-leader", "<m4-id>"], all);
  same(["member", "promote", "<m4-id>"], ["m0"], { retryOn: [notInSync] });
  same(["member", "promote", "<m4-id>"], ["m0"]);
  same(["member", "list", "-w", "table"], ["m0"]);
  same(["endpoint", "status", "-w", "table"], [...all, "m4"]);
  same(["endpoint", "health"], [...all, "m4"]);
  same(["endpoint", "hashkv"], [...all, "m4"]);
  same(["member", "update", "<m4-id>", "--peer-urls=<m4-peer>", "-w", "json"], ["m0"]);
  same(["member", "update", "<m4-id>", "--peer-urls=<m0-peer>"], ["m4"]);

  // -- A voter that never starts: the cluster is not fully connected. ---------
  same(["member", "add", "m5", "--peer-urls=http://127.0.0.11:2380", "-w", "json"], ["m0"], { retryOn: [unhealthy], adds: "m5" });
  same(["member", "list"], ["m0"]);
  same(["member", "add", "m6", "--learner", "--peer-urls=http://127.0.0.12:2380"], ["m0"], { adds: "m6" });
  action("no learner was added to an unhealthy cluster", (side) => undoAdd(side, "m6"));
  same(["member", "add", "m6", "--peer-urls=http://127.0.0.12:2380", "-w", "json"], ["m0"], { adds: "m6" });
  action("no voter was added to an unhealthy cluster", (side) => undoAdd(side, "m6"));
  same(["member", "add", "m9", "--peer-urls=<m1-peer>"], ["m0"], { adds: "m9" });
  action("no member with a taken URL was added", (side) => undoAdd(side, "m9"));
  same(["member", "update", "<m5-id>", "--peer-urls=http://127.0.0.13:2380"], ["m0"]);
  same(["member", "list", "-w", "fields"], ["m0"]);
  same(["member", "remove", "<m5-id>"], ["m0"]);

  // -- A running voter removed. ------------------------------------------------
  same(["member", "remove", "<m4-id>"], ["m2"]);
  same(["member", "remove", "<m4-id>"], ["m0"]);
  same(["member", "list", "-w", "table"], ["m0"]);
  same(["member", "list", "-w", "json"], ["m1"]);
  same(["endpoint", "status", "-w", "table"], all);
  same(["endpoint", "health"], all);
  same(["endpoint", "hashkv", "-w", "json"], all);
});
