// Differential harness for the end-to-end etcdctl tests: the real `etcdctl`
// (Debian's etcd-client 3.4) runs the same commands against a fresh real etcd
// and a fresh tetcd, and the two outputs are compared after normalizing only
// what may legitimately differ: cluster_id, member_id (and the leader id, which
// is a member id), raft_term, the endpoint address (each server has its own
// port), and — for `endpoint status` — DB size, dbSizeInUse, raft index and raft
// applied index, and for `endpoint health` the time taken. Everything else,
// stderr error lines and exit codes included, must match byte for byte.
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { hasCommand, startEtcd, startTetcd, type ServerProcess, type StartOptions } from "../support/processes.js";

/** What one etcdctl invocation printed. `stdout` is a Buffer: `-w protobuf` is binary. */
export interface CtlResult {
  readonly status: number;
  readonly stdout: Buffer;
  readonly stderr: string;
}

/** How a command's stdout is normalized before comparison. */
export type OutputKind =
  | "text" // plain text; only endpoint addresses are replaced
  | "json" // `-w json`: header ids and term replaced
  | "fields" // `-w fields`: "ClusterID", "MemberID", "RaftTerm" replaced
  | "protobuf" // `-w protobuf`: header fields 1, 2 and 4 removed from the message bytes
  | "status-table" // `endpoint status -w table`
  | "status-json" // `endpoint status -w json`
  | "status-simple" // `endpoint status` (simple)
  | "status-fields" // `endpoint status -w fields`
  | "health" // `endpoint health` (simple, printed on stderr)
  | "health-json" // `endpoint health -w json`: "took" replaced
  | "health-table" // `endpoint health -w table`: the TOOK column replaced
  | "alarm"; // `alarm list` / `alarm disarm` (simple); alarm memberIDs are replaced in every kind

/** One step of a script: the etcdctl arguments (without --endpoints), optional stdin, how to normalize. */
export interface Step {
  readonly args: readonly string[];
  readonly input?: string;
  readonly kind?: OutputKind;
  /** Pass the endpoint as `http://127.0.0.1:port` instead of `127.0.0.1:port`. */
  readonly url?: boolean;
}

/** The normalized outcome of one step on one server. */
export interface Normalized {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

const ctlTimeoutMs = 20_000;

/** Fails loudly when the reference binaries are missing: CI installs them, a missing one is an error, never a skip. */
export function requireReferenceBinaries(): void {
  assert.ok(hasCommand("etcd"), "the reference `etcd` (Debian etcd-server) must be installed for the e2e tests");
  assert.ok(hasCommand("etcdctl"), "the real `etcdctl` (Debian etcd-client) must be installed for the e2e tests");
}

/** The environment without any ETCDCTL_* setting that could change what etcdctl does. */
const ctlEnvironment = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("ETCDCTL_")));

/** Runs the real etcdctl against one endpoint; stdout is kept as bytes. */
export function runCtl(endpoint: string, args: readonly string[], input?: string, url = false): CtlResult {
  const result = spawnSync("etcdctl", [`--endpoints=${url ? `http://${endpoint}` : endpoint}`, ...args], {
    input,
    timeout: ctlTimeoutMs,
    env: { ...ctlEnvironment, ETCDCTL_API: "3" },
  });
  if (result.error !== undefined) throw result.error;
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr.toString("utf8") };
}

/**
 * Runs the real etcdctl against `endpoints` (in that order) without blocking the
 * event loop, with the environment `runCtl` uses; a run past `timeoutMs` is killed.
 */
export function runCtlAsync(endpoints: readonly string[], args: readonly string[], timeoutMs = ctlTimeoutMs): Promise<CtlResult> {
  return new Promise((resolve) => {
    const options = { encoding: "buffer" as const, timeout: timeoutMs, killSignal: "SIGKILL" as const, env: { ...ctlEnvironment, ETCDCTL_API: "3" } };
    execFile("etcdctl", [`--endpoints=${endpoints.join(",")}`, ...args], options, (error, stdout, stderr) => {
      const status = error === null ? 0 : typeof error.code === "number" ? error.code : -1;
      resolve({ status, stdout, stderr: stderr.toString("utf8") });
    });
  });
}

// ---------------------------------------------------------------------------
// Normalization. Each rule names exactly one field that may differ.

function replaceEndpoint(text: string, endpoint: string): string {
  return text.split(endpoint).join("<endpoint>");
}

/** `-w json` headers (Go's encoding/json of etcdserverpb.ResponseHeader). */
function normalizeJsonHeader(text: string): string {
  return text
    .replace(/"cluster_id":\d+/g, '"cluster_id":<cluster_id>')
    .replace(/"member_id":\d+/g, '"member_id":<member_id>')
    .replace(/"raft_term":\d+/g, '"raft_term":<raft_term>');
}

/** `-w fields` prints `"ClusterID" : 123` etc. */
function normalizeFieldsHeader(text: string): string {
  return text
    .replace(/^"ClusterID" : \d+$/gm, '"ClusterID" : <cluster_id>')
    .replace(/^"MemberID" : \d+$/gm, '"MemberID" : <member_id>')
    .replace(/^"RaftTerm" : \d+$/gm, '"RaftTerm" : <raft_term>');
}

/** etcdctl's zap log lines on stderr: drop the timestamp; the target carries a random client id and the endpoint. */
function normalizeStderr(text: string, endpoint: string): string {
  return text
    .split("\n")
    .map((line) => {
      if (!line.startsWith("{")) return replaceEndpoint(line, endpoint);
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return replaceEndpoint(line, endpoint);
      }
      delete entry.ts;
      if (typeof entry.target === "string") entry.target = entry.target.replace(/^endpoint:\/\/client-[0-9a-f-]+\//, "endpoint://client-<id>/");
      return replaceEndpoint(JSON.stringify(entry), endpoint);
    })
    .join("\n");
}

// -- protobuf (`-w protobuf`): a minimal wire-format walker ------------------

function readVarint(bytes: Buffer, offset: number): [bigint, number] {
  let value = 0n;
  let shift = 0n;
  for (;;) {
    if (offset >= bytes.length) throw new Error("truncated varint");
    const byte = bytes[offset++]!;
    value |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [value, offset];
    shift += 7n;
  }
}

function encodeVarint(value: bigint): Buffer {
  const out: number[] = [];
  do {
    let byte = Number(value & 0x7fn);
    value >>= 7n;
    if (value !== 0n) byte |= 0x80;
    out.push(byte);
  } while (value !== 0n);
  return Buffer.from(out);
}

interface WireField {
  readonly number: number;
  readonly raw: Uint8Array; // the whole field: tag and payload
  readonly payload: Buffer; // for length-delimited fields, the content
}

function parseFields(bytes: Buffer): WireField[] {
  const fields: WireField[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    const start = offset;
    const [tag, afterTag] = readVarint(bytes, offset);
    offset = afterTag;
    const wireType = Number(tag & 7n);
    const number = Number(tag >> 3n);
    let payload: Buffer = Buffer.alloc(0);
    if (wireType === 0) [, offset] = readVarint(bytes, offset);
    else if (wireType === 1) offset += 8;
    else if (wireType === 5) offset += 4;
    else if (wireType === 2) {
      const [length, afterLength] = readVarint(bytes, offset);
      payload = bytes.subarray(afterLength, afterLength + Number(length));
      offset = afterLength + Number(length);
    } else throw new Error(`unsupported wire type ${wireType}`);
    if (offset > bytes.length) throw new Error("truncated field");
    fields.push({ number, raw: bytes.subarray(start, offset), payload });
  }
  return fields;
}

/**
 * A response's bytes with header.cluster_id (1), header.member_id (2) and
 * header.raft_term (4) removed; header.revision (3) and everything else are kept
 * byte for byte. Rendered as hex so that a difference is readable.
 */
export function normalizeProtobuf(bytes: Buffer): string {
  const out: Uint8Array[] = [];
  for (const field of parseFields(bytes)) {
    if (field.number !== 1) {
      out.push(field.raw);
      continue;
    }
    const kept = parseFields(field.payload)
      .filter((inner) => inner.number !== 1 && inner.number !== 2 && inner.number !== 4)
      .map((inner) => inner.raw);
    const header = Buffer.concat(kept);
    out.push(Buffer.from([0x0a]), encodeVarint(BigInt(header.length)), header);
  }
  return Buffer.concat(out).toString("hex");
}

// -- endpoint status / health / alarm ---------------------------------------

/**
 * An etcdctl table with the cells of `masked` columns replaced. Cells are
 * compared trimmed (a column's width follows its widest cell, and a masked
 * value may be wider on one side); the number of border lines is kept.
 */
function normalizeTable(text: string, endpoint: string, masked: ReadonlySet<string>): string {
  const lines = text.split("\n");
  const rows = lines.filter((line) => line.startsWith("|")).map((line) => line.split("|").slice(1, -1).map((cell) => cell.trim()));
  const borders = lines.filter((line) => line.startsWith("+")).length;
  const header = rows[0] ?? [];
  const normalized = rows.map((row, index) =>
    row
      .map((cell, column) => {
        const name = header[column] ?? "";
        if (index > 0 && masked.has(name)) return `<${name.toLowerCase().replace(/ /g, "_")}>`;
        return replaceEndpoint(cell, endpoint);
      })
      .join(" | "),
  );
  return `${borders} border lines\n${normalized.join("\n")}\n`;
}

/**
 * An etcdctl table as `normalize` compares tables: cells trimmed, the cells of
 * the `masked` columns replaced, the number of border lines kept; no endpoint
 * is replaced. One line per row, the header first, after a border-count line.
 */
export function normalizeTableCells(text: string, masked: ReadonlySet<string>): string {
  return normalizeTable(text, "\u0000", masked);
}

/** `endpoint status -w table`: ID, DB SIZE, RAFT TERM, RAFT INDEX, RAFT APPLIED INDEX. */
const statusTableMasked = new Set(["ID", "DB SIZE", "RAFT TERM", "RAFT INDEX", "RAFT APPLIED INDEX"]);

/** `endpoint status -w fields`: the header's, and DBSize, Leader, RaftIndex, RaftTerm, RaftAppliedIndex. */
function normalizeStatusFields(text: string, endpoint: string): string {
  return replaceEndpoint(normalizeFieldsHeader(text), endpoint)
    .replace(/^"DBSize" : \d+$/gm, '"DBSize" : <db_size>')
    .replace(/^"Leader" : \d+$/gm, '"Leader" : <member_id>')
    .replace(/^"RaftIndex" : \d+$/gm, '"RaftIndex" : <raft_index>')
    .replace(/^"RaftAppliedIndex" : \d+$/gm, '"RaftAppliedIndex" : <raft_applied_index>');
}

/**
 * `endpoint status -w json`: header ids, leader (a member id) and raftTerm are
 * replaced; dbSize, dbSizeInUse, raftIndex and raftAppliedIndex are removed
 * (Go's encoding/json omits a zero one, so only removal makes "any value" equal).
 */
function normalizeStatusJson(text: string, endpoint: string): string {
  return replaceEndpoint(normalizeJsonHeader(text), endpoint)
    .replace(/"leader":\d+/g, '"leader":<member_id>')
    .replace(/"raftTerm":\d+/g, '"raftTerm":<raft_term>')
    .replace(/,"(?:dbSize|dbSizeInUse|raftIndex|raftAppliedIndex)":\d+/g, "");
}

/** `endpoint status` (simple): `endpoint, id, version, db size, is leader, is learner, term, index, applied index, errors`. */
function normalizeStatusSimple(text: string, endpoint: string): string {
  return text
    .split("\n")
    .map((line) => {
      if (line === "") return line;
      const cells = replaceEndpoint(line, endpoint).split(", ");
      if (cells.length < 9) return line;
      cells[1] = "<member_id>";
      cells[3] = "<db_size>";
      cells[6] = "<raft_term>";
      cells[7] = "<raft_index>";
      cells[8] = "<raft_applied_index>";
      return cells.join(", ");
    })
    .join("\n");
}

/** `endpoint health`: the time the proposal took. */
function normalizeHealth(text: string, endpoint: string): string {
  return replaceEndpoint(text, endpoint).replace(/took = [0-9.]+(?:ns|µs|us|ms|s|m|h)(?:[0-9.]+(?:ns|µs|us|ms|s))*/g, "took = <duration>");
}

/**
 * Alarms name the member that raised them: `memberID:<decimal> alarm:<type>` in
 * simple output and in endpoint status' errors, `"memberID":<decimal>` in JSON.
 */
function normalizeAlarmMember(text: string): string {
  return text.replace(/memberID:\d+/g, "memberID:<member_id>").replace(/"memberID":\d+/g, '"memberID":<member_id>');
}

export function normalize(result: CtlResult, endpoint: string, kind: OutputKind): Normalized {
  // `endpoint health` reports on stderr.
  const stderr = kind === "health" ? normalizeHealth(normalizeStderr(result.stderr, endpoint), endpoint) : normalizeStderr(result.stderr, endpoint);
  if (kind === "protobuf") {
    let stdout: string;
    try {
      stdout = normalizeProtobuf(result.stdout);
    } catch (error) {
      stdout = `unparsable protobuf (${String(error)}): ${result.stdout.toString("hex")}`;
    }
    return { status: result.status, stdout, stderr };
  }
  const text = result.stdout.toString("utf8");
  let stdout: string;
  switch (kind) {
    case "text":
      stdout = replaceEndpoint(text, endpoint);
      break;
    case "json":
      stdout = replaceEndpoint(normalizeJsonHeader(text), endpoint);
      break;
    case "fields":
      stdout = replaceEndpoint(normalizeFieldsHeader(text), endpoint);
      break;
    case "status-table":
      stdout = normalizeTable(text, endpoint, statusTableMasked);
      break;
    case "status-fields":
      stdout = normalizeStatusFields(text, endpoint);
      break;
    case "health-table":
      stdout = normalizeTable(text, endpoint, new Set(["TOOK"]));
      break;
    case "status-json":
      stdout = normalizeStatusJson(text, endpoint);
      break;
    case "status-simple":
      stdout = normalizeStatusSimple(text, endpoint);
      break;
    case "health":
      stdout = normalizeHealth(text, endpoint);
      break;
    case "health-json":
      stdout = replaceEndpoint(text, endpoint).replace(/"took":"[^"]*"/g, '"took":"<duration>"');
      break;
    case "alarm":
      stdout = text;
      break;
  }
  return { status: result.status, stdout: normalizeAlarmMember(stdout), stderr };
}

function writeOut(args: readonly string[]): string {
  let format = "simple";
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "-w" || arg === "--write-out") format = args[i + 1] ?? format;
    else if (arg.startsWith("-w=")) format = arg.slice(3);
    else if (arg.startsWith("--write-out=")) format = arg.slice(12);
  }
  return format;
}

/** The output kind implied by the command and its `-w`/`--write-out` flag, when the step does not say. */
export function kindOf(step: Step): OutputKind {
  if (step.kind !== undefined) return step.kind;
  const words = step.args.filter((arg) => !arg.startsWith("-"));
  const format = writeOut(step.args);
  if (words[0] === "endpoint" && words[1] === "status") {
    if (format === "table") return "status-table";
    if (format === "json") return "status-json";
    if (format === "simple") return "status-simple";
    if (format === "fields") return "status-fields";
  }
  if (words[0] === "endpoint" && words[1] === "health" && format === "simple") return "health";
  if (words[0] === "endpoint" && words[1] === "health" && format === "json") return "health-json";
  if (words[0] === "endpoint" && words[1] === "health" && format === "table") return "health-table";
  if (words[0] === "alarm" && format === "simple") return "alarm";
  if (format === "json" || format === "fields" || format === "protobuf") return format;
  return "text";
}

// ---------------------------------------------------------------------------
// A pair of fresh servers, driven in lockstep.

export function describeStep(step: Step): string {
  const quoted = step.args.map((arg) => (arg === "" || /[\s"']/.test(arg) ? JSON.stringify(arg) : arg));
  const command = `etcdctl ${step.url === true ? "--endpoints=http://<endpoint> " : ""}${quoted.join(" ")}`;
  return step.input === undefined ? command : `${command} <<< ${JSON.stringify(step.input)}`;
}

export class Pair {
  private constructor(
    readonly etcd: ServerProcess,
    readonly tetcd: ServerProcess,
  ) {}

  /** Starts a fresh etcd and a fresh tetcd (same extra flags for both). */
  static async start(options: { etcd?: StartOptions; tetcd?: StartOptions } = {}): Promise<Pair> {
    requireReferenceBinaries();
    const [etcd, tetcd] = await Promise.allSettled([startEtcd(options.etcd), startTetcd(options.tetcd)]);
    if (etcd.status === "rejected" || tetcd.status === "rejected") {
      if (etcd.status === "fulfilled") await etcd.value.stop();
      if (tetcd.status === "fulfilled") await tetcd.value.stop();
      throw etcd.status === "rejected" ? etcd.reason : (tetcd as PromiseRejectedResult).reason;
    }
    const pair = new Pair(etcd.value, tetcd.value);
    // A fresh etcd may accept connections before it has elected itself; wait
    // until both pass `endpoint health` (a linearizable read), so that the first
    // command of a script does not race the election on one side only.
    for (const server of [pair.etcd, pair.tetcd]) {
      const deadline = Date.now() + 15_000;
      for (;;) {
        const probe = runCtl(server.endpoint, ["endpoint", "health"]);
        if (probe.status === 0) break;
        if (Date.now() > deadline) {
          await pair.stop();
          throw new Error(`server at ${server.endpoint} never became healthy:\n${probe.stderr}\n${server.output()}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    return pair;
  }

  /** Runs one step on both servers (etcd first) and returns both normalized outcomes. */
  run(step: Step): { etcd: Normalized; tetcd: Normalized; raw: { etcd: CtlResult; tetcd: CtlResult } } {
    const kind = kindOf(step);
    const rawEtcd = runCtl(this.etcd.endpoint, step.args, step.input, step.url);
    const rawTetcd = runCtl(this.tetcd.endpoint, step.args, step.input, step.url);
    const etcd = normalize(rawEtcd, this.etcd.endpoint, kind);
    const tetcd = normalize(rawTetcd, this.tetcd.endpoint, kind);
    return { etcd, tetcd, raw: { etcd: rawEtcd, tetcd: rawTetcd } };
  }

  /** Runs one step on both servers and asserts the normalized outcomes are identical. Returns etcd's outcome. */
  expectSame(step: Step): Normalized {
    const { etcd, tetcd } = this.run(step);
    assert.deepEqual(tetcd, etcd, `tetcd differs from etcd for: ${describeStep(step)}`);
    return etcd;
  }

  async stop(): Promise<void> {
    await Promise.allSettled([this.etcd.stop(), this.tetcd.stop()]);
  }
}

/** One test per step of `script`, run in order against a fresh etcd and a fresh tetcd, outputs compared. */
export function compareScript(title: string, script: readonly Step[], timeoutMs: number): void {
  describe(title, { timeout: timeoutMs }, () => {
    let pair: Pair | undefined;
    before(async () => {
      pair = await Pair.start();
    });
    after(async () => {
      await pair?.stop();
    });
    for (const step of script) {
      test(describeStep(step), () => {
        if (pair === undefined) throw new Error("servers did not start");
        pair.expectSame(step);
      });
    }
  });
}
