import cliProgress from "cli-progress";
import { parseInitialCluster } from "../server/config.js";
import { parseGoBool } from "../server/go-values.js";
import { restoreSnapshot } from "../snapshot/restore.js";
import { snapshotStatus, type SnapshotStatus } from "../snapshot/snapshot-file.js";

/** etcdutl's defaults for the restore flags (the data dir defaults to `<name>.tetcd`, as tetcd's own). */
const restoreDefaults = {
  name: "default",
  "initial-cluster": "default=http://localhost:2380",
  "initial-cluster-token": "etcd-cluster",
  "initial-advertise-peer-urls": "http://localhost:2380",
} as const;

const valueFlags = new Set(["data-dir", "name", "initial-cluster", "initial-cluster-token", "initial-advertise-peer-urls", "write-out", "w"]);
const boolFlags = new Set(["skip-hash-check"]);

export class UsageError extends Error {}

/** `--flag value`, `--flag=value`, `-flag`, and the file argument. */
function parseArguments(argv: readonly string[]): { file: string | undefined; flags: Map<string, string> } {
  const flags = new Map<string, string>();
  let file: string | undefined;
  for (let index = 0; index < argv.length; index++) {
    const argument = argv[index]!;
    if (!argument.startsWith("-") || argument === "-") {
      if (file !== undefined) throw new UsageError(`unexpected argument ${JSON.stringify(argument)}`);
      file = argument;
      continue;
    }
    const body = argument.replace(/^--?/, "");
    const separator = body.indexOf("=");
    const name = separator < 0 ? body : body.slice(0, separator);
    if (boolFlags.has(name)) {
      const value = separator < 0 ? true : parseGoBool(body.slice(separator + 1));
      if (value === undefined) throw new UsageError(`invalid argument ${JSON.stringify(body.slice(separator + 1))} for "--${name}" flag`);
      flags.set(name, String(value));
    } else if (valueFlags.has(name)) {
      const value = separator < 0 ? argv[++index] : body.slice(separator + 1);
      if (value === undefined) throw new UsageError(`flag needs an argument: --${name}`);
      flags.set(name === "w" ? "write-out" : name, value);
    } else {
      throw new UsageError(`unknown flag: --${name}`);
    }
  }
  return { file, flags };
}

/**
 * `tetcd snapshot restore|status FILE [flags]`, with etcdutl's flags and
 * output: restore builds a member's data dir from a snapshot file (from tetcd
 * or etcd 3.4); status prints what `etcdctl snapshot status` prints.
 */
export async function snapshotCommand(argv: readonly string[], out: (text: string) => void, log: (text: string) => void): Promise<void> {
  const [subcommand, ...rest] = argv;
  const { file, flags } = parseArguments(rest);
  if (subcommand !== "restore" && subcommand !== "status") throw new UsageError(`unknown command "snapshot ${subcommand ?? ""}": want "snapshot restore" or "snapshot status"`);
  if (file === undefined) throw new UsageError(`snapshot ${subcommand} requires exactly one argument`);
  if (subcommand === "status") {
    out(formatStatus(snapshotStatus(file), flags.get("write-out") ?? "simple"));
    return;
  }
  const get = (name: keyof typeof restoreDefaults): string => flags.get(name) ?? restoreDefaults[name];
  const name = get("name");
  const dataDir = flags.get("data-dir") ?? `${name}.tetcd`;
  log(JSON.stringify({ level: "info", msg: "restoring snapshot", path: file, "data-dir": dataDir }));
  const progress = process.stderr.isTTY ? progressBar() : undefined;
  const result = await restoreSnapshot({
    onProgress: progress?.update,
    snapshotPath: file,
    dataDir,
    name,
    initialCluster: parseInitialCluster(get("initial-cluster")),
    initialClusterToken: get("initial-cluster-token"),
    initialAdvertisePeerUrls: get("initial-advertise-peer-urls").split(",").filter((url) => url !== ""),
    skipHashCheck: flags.get("skip-hash-check") === "true",
  });
  progress?.stop();
  log(JSON.stringify({ level: "info", msg: "restored snapshot", path: file, "data-dir": dataDir, "member-id": result.memberId.toString(16), "cluster-id": result.clusterId.toString(16), records: result.records }));
}

/** A progress bar on the terminal (bytes done, rate); only when standard error is one. */
function progressBar(): { update: (doneBytes: number, totalBytes: number) => void; stop: () => void } {
  const bar = new cliProgress.SingleBar(
    { format: "restoring |{bar}| {percentage}% | {done} of {size} | {rate}/s", stream: process.stderr, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  const startedMs = performance.now();
  let started = false;
  return {
    update(doneBytes, totalBytes) {
      const seconds = Math.max((performance.now() - startedMs) / 1000, 0.001);
      const payload = { done: humanizeBytes(doneBytes), size: humanizeBytes(totalBytes), rate: humanizeBytes(Math.round(doneBytes / seconds)) };
      if (!started) {
        bar.start(totalBytes, doneBytes, payload);
        started = true;
      } else bar.update(doneBytes, payload);
    },
    stop: () => bar.stop(),
  };
}

/** Bytes in SI units as Go's go-humanize prints them: 20 kB, 1.2 MB. */
export function humanizeBytes(bytes: number): string {
  if (bytes < 10) return `${bytes} B`;
  const units = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
  const exponent = Math.floor(Math.log(bytes) / Math.log(1000));
  const value = Math.floor((bytes / 1000 ** exponent) * 10 + 0.5) / 10;
  return `${value < 10 ? value.toFixed(1) : roundHalfEven(value).toFixed(0)} ${units[exponent]}`;
}

/** Go's %.0f rounds an exact half to the even neighbour (20.5 prints 20). */
function roundHalfEven(value: number): number {
  const floor = Math.floor(value);
  if (value - floor !== 0.5) return Math.round(value);
  return floor % 2 === 0 ? floor : floor + 1;
}

/** The status in etcdctl's forms: simple, table or json. */
export function formatStatus(status: SnapshotStatus, format: string): string {
  const hash = status.hash.toString(16);
  const size = humanizeBytes(status.totalSize);
  if (format === "json") return `${JSON.stringify(status)}\n`;
  if (format === "simple") return `${hash}, ${status.revision}, ${status.totalKey}, ${size}\n`;
  if (format !== "table") throw new UsageError(`unknown output format "${format}"`);
  const headers = ["HASH", "REVISION", "TOTAL KEYS", "TOTAL SIZE"];
  const values = [hash, String(status.revision), String(status.totalKey), size];
  const widths = headers.map((header, index) => Math.max(header.length, values[index]!.length));
  const rule = `+${widths.map((width) => "-".repeat(width + 2)).join("+")}+`;
  const center = (text: string, width: number): string => {
    const left = Math.floor((width - text.length) / 2);
    return " ".repeat(left) + text + " ".repeat(width - text.length - left);
  };
  const headerRow = `|${headers.map((header, index) => ` ${center(header, widths[index]!)} `).join("|")}|`;
  const valueRow = `|${values.map((value, index) => ` ${value.padStart(widths[index]!)} `).join("|")}|`;
  return [rule, headerRow, rule, valueRow, rule, ""].join("\n");
}
