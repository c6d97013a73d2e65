import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { ConfigError, HelpRequested, loadConfig } from "../../src/server/config.js";
import { flagsByName, type FlagSpec } from "../../src/server/flags.js";
import { temporaryDirectory } from "../support/processes.js";

/**
 * Every flag of etcd 3.4 (its --help is the list), in the spellings and value
 * forms Go's flag package knows, given to etcd and to tetcd. A leading
 * `--logger=bogus` makes a start that got past the flags stop at once with
 * "unknown logger option", so one run tells whether etcd took the value, or
 * with what words and exit code it refused it. tetcd must answer each the same.
 */

/** A start's verdict on its flags: taken, or refused with an exit code and etcd's words. */
interface Outcome {
  exitCode: number;
  message: string;
}

const accepted: Outcome = { exitCode: 1, message: 'unknown logger option "bogus"' };

function etcdFlagNames(): string[] {
  const help = spawnSync("etcd", ["--help"], { encoding: "utf8", timeout: 10_000 });
  const names = [...`${help.stdout}${help.stderr}`.matchAll(/^\s+--([a-z0-9-]+)/gm)].map((match) => match[1]!);
  return [...new Set(names)];
}

/** Values that get past etcd's later checks for string flags that carry meaning. */
const meaningfulValues: Record<string, string> = {
  "log-level": "debug",
  "auto-compaction-mode": "revision",
  "initial-cluster": "default=http://127.0.0.1:2380",
  "experimental-backend-bbolt-freelist-type": "map",
  "log-outputs": "stderr",
};

function forms(spec: FlagSpec): string[][] {
  const name = spec.name;
  switch (spec.kind) {
    case "bool":
      return [[`--${name}`], [`-${name}`], [`--${name}=true`], [`-${name}=false`], [`--${name}=1`], [`--${name}=0`], [`--${name}=T`], [`--${name}=False`], [`--${name}=yes`], [`--${name}`, "false"]];
    case "uint":
    case "uint32":
      return [[`--${name}=0`], [`--${name}`, "7"], [`-${name}=0x1f`], [`--${name}=0o17`], [`--${name}=010`], [`--${name}=1_000`], [`--${name}=-1`], [`--${name}=abc`], [`--${name}=1.5`], [`--${name}=99999999999999999999`], [`--${name}`]];
    case "int":
      return [[`--${name}=-5`], [`--${name}`, "0"], [`--${name}=0x10`], [`--${name}=abc`], [`--${name}=9223372036854775808`], [`--${name}=1_0`]];
    case "duration":
      return [[`--${name}=1m30s`], [`--${name}`, "0"], [`--${name}=1.5s`], [`--${name}=.5s`], [`--${name}=-1s`], [`--${name}=5`], [`--${name}=abc`], [`--${name}=`], [`--${name}=1h2q`]];
    case "urls":
      return [[`--${name}=http://127.0.0.1:2379`], [`--${name}`, "http://127.0.0.1:2379,https://[::1]:2380"], [`--${name}=`], [`--${name}=http://x`], [`--${name}=ftp://127.0.0.1:1`], [`--${name}=127.0.0.1:2379`], [`--${name}=http://127.0.0.1:1/p`], [`--${name}=unix://a:1`], [`--${name}=localhost:2379`]];
    case "choice":
      return [...spec.choices!.map((value) => [`--${name}=${value}`]), [`--${name}=zz`], [`--${name}`]];
    case "string":
      return [[`--${name}=${meaningfulValues[name] ?? "x"}`], [`-${name}`, meaningfulValues[name] ?? "x"], [`--${name}`]];
  }
}

function etcdOutcome(args: string[], dataDir: string): Promise<Outcome> {
  return new Promise((resolve) => {
    execFile("etcd", ["--logger=bogus", "--data-dir", dataDir, ...args], { encoding: "utf8", timeout: 10_000, env: { PATH: process.env.PATH ?? "" } }, (error, stdout, stderr) => {
      const exitCode = error === null ? 0 : typeof error.code === "number" ? error.code : -1;
      const verifying = /error verifying flags, (.*)\. See 'etcd --help'\./.exec(stderr);
      resolve({ exitCode, message: verifying?.[1] ?? (exitCode === 0 ? "" : stderr.split("\n")[0]!) });
    });
  });
}

function tetcdOutcome(args: string[], dataDir: string): Outcome {
  try {
    loadConfig(["--logger=bogus", "--data-dir", dataDir, ...args], {});
    return { exitCode: 0, message: "" };
  } catch (error) {
    if (error instanceof HelpRequested) return { exitCode: 0, message: "" };
    if (error instanceof ConfigError) return { exitCode: error.exitCode, message: error.message };
    throw error;
  }
}

/** Runs `work` over `items`, `parallel` at a time. */
async function pool<T, R>(items: T[], parallel: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < items.length) {
        const index = next++;
        results[index] = await work(items[index]!);
      }
    }),
  );
  return results;
}

describe("etcd 3.4's flags, compared with etcd", { timeout: 180_000 }, () => {
  const names = etcdFlagNames();

  test("etcd's --help lists the flags (the list this comparison walks)", () => {
    assert.ok(names.length >= 75, `etcd --help lists ${names.length} flags`);
    const missing = names.filter((name) => !flagsByName.has(name));
    assert.deepEqual(missing, [], "every flag etcd lists is one of tetcd's");
  });

  test("every spelling and value form is taken or refused as etcd takes or refuses it", async () => {
    const parent = temporaryDirectory("flag-forms");
    after(() => rmSync(parent, { recursive: true, force: true }));
    const dataDir = join(parent, "never-created");
    // --config-file reads a file, --version prints and exits, and --logger is the probe: each is tried in other tests.
    const cases = names.filter((name) => !["config-file", "version", "logger"].includes(name)).flatMap((name) => forms(flagsByName.get(name)!));
    cases.push(["---name=x"], ["-=x"], ["--Name=x"], ["--version=false"], ["--", "x"], ["stray"], ["-h"], ["--help=false"]);
    const etcdOutcomes = await pool(cases, 4, (args) => etcdOutcome(args, dataDir));
    const differences: string[] = [];
    let acceptedCount = 0;
    for (const [index, args] of cases.entries()) {
      const expected = etcdOutcomes[index]!;
      const actual = tetcdOutcome(args, dataDir);
      if (expected.exitCode === accepted.exitCode && expected.message === accepted.message) acceptedCount++;
      if (actual.exitCode !== expected.exitCode || actual.message !== expected.message) {
        differences.push(`${args.join(" ")}: etcd ${expected.exitCode} "${expected.message}", tetcd ${actual.exitCode} "${actual.message}"`);
      }
    }
    assert.deepEqual(differences, [], `${differences.length} of ${cases.length} forms differ`);
    assert.ok(acceptedCount > 100 && acceptedCount < cases.length - 100, `both accept some forms (${acceptedCount}) and refuse others`);
  });
});
