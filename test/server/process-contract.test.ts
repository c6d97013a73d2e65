import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { etcdctl, freePort, temporaryDirectory, tetcdBin } from "../support/processes.js";
import { missingFrom, WriteLoad } from "../support/write-load.js";

/**
 * etcd's process contract, as supervisors and test rigs rely on it: tetcd and
 * etcd 3.4 are started the same way (with extra ETCD_* variables, under a
 * pseudo-terminal, with standard input closed), and must both start, print
 * the same readiness lines, answer `etcdctl endpoint health`, and end on
 * SIGTERM or SIGINT with the same status.
 */

type Kind = "etcd" | "tetcd";
/** How standard input is set up: a pipe never written to, a pseudo-terminal (through `script`), or closed. */
type Stdin = "pipe" | "pty" | "closed";

interface Started {
  readonly child: ChildProcess;
  readonly endpoint: string;
  readonly dataDir: string;
  output(): string;
  /** The pid of the server itself (under `script`, the child of `script`). */
  serverPid(): Promise<number>;
  /** Resolves with the launcher's exit: its code, or the signal that ended it. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const startTimeoutMs = 20_000;
const stopTimeoutMs = 10_000;
const running = new Set<ChildProcess>();
after(() => {
  for (const child of running) child.kill("SIGKILL");
});

/** The machine's architecture as Go names it, which is what etcd compares ETCD_UNSUPPORTED_ARCH with. */
const goArch = ({ x64: "amd64", arm64: "arm64", ppc64: "ppc64le", s390x: "s390x", ia32: "386", arm: "arm" } as Record<string, string>)[process.arch] ?? process.arch;

function quote(argument: string): string {
  return `'${argument.replaceAll("'", "'\\''")}'`;
}

async function start(kind: Kind, options: { stdin?: Stdin; environment?: Record<string, string>; args?: string[]; dataDir?: string } = {}): Promise<Started> {
  const port = await freePort();
  const peerUrl = `http://127.0.0.1:${await freePort()}`;
  const clientUrl = `http://127.0.0.1:${port}`;
  const dataDir = options.dataDir ?? join(temporaryDirectory(`contract-${kind}`), "data");
  const command = kind === "etcd" ? ["etcd"] : [process.execPath, tetcdBin];
  const args = [...command, "--data-dir", dataDir, "--listen-client-urls", clientUrl, "--advertise-client-urls", clientUrl, "--listen-peer-urls", peerUrl, "--initial-advertise-peer-urls", peerUrl, "--initial-cluster", `default=${peerUrl}`, ...(options.args ?? [])];
  const shellCommand = `exec ${args.map(quote).join(" ")}`;
  const env = { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/", ...options.environment };
  const stdin = options.stdin ?? "pipe";
  const child =
    stdin === "pty"
      ? spawn("script", ["-qec", shellCommand, "/dev/null"], { env, stdio: ["pipe", "pipe", "pipe"] })
      : stdin === "closed"
        ? spawn("sh", ["-c", `${shellCommand} <&-`], { env, stdio: ["pipe", "pipe", "pipe"] })
        : spawn(args[0]!, args.slice(1), { env, stdio: ["pipe", "pipe", "pipe"] });
  running.add(child);
  let log = "";
  child.stdout!.on("data", (chunk: Buffer) => (log += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (log += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    }),
  );
  return {
    child,
    endpoint: `127.0.0.1:${port}`,
    dataDir,
    output: () => log,
    exited,
    async serverPid() {
      if (stdin !== "pty") return child.pid!;
      for (let attempt = 0; attempt < 100; attempt++) {
        const found = spawnSync("pgrep", ["-P", String(child.pid)], { encoding: "utf8" }).stdout.trim();
        if (found !== "") return Number(found.split("\n")[0]);
        await sleep(50);
      }
      throw new Error("no server process under script");
    },
  };
}

/** Waits for the lines etcd's own test rigs wait for (etcd 3.4 logs "ready to serve client requests" with capnslog only). */
async function waitForReady(server: Started): Promise<void> {
  const deadline = Date.now() + startTimeoutMs;
  while (!["published", "enabled capabilities for version"].every((line) => server.output().includes(line))) {
    if (server.child.exitCode !== null || Date.now() > deadline) throw new Error(`not ready:\n${server.output()}`);
    await sleep(50);
  }
}

/** Sends `signal` to the server and waits for the launcher to end; returns how it ended. */
async function stopWith(server: Started, signal: NodeJS.Signals): Promise<string> {
  process.kill(await server.serverPid(), signal);
  const timer = setTimeout(() => server.child.kill("SIGKILL"), stopTimeoutMs);
  const { code, signal: endedBy } = await server.exited;
  clearTimeout(timer);
  return endedBy === null ? `exit ${code}` : `signal ${endedBy}`;
}

/** The lines a rig waits for, and what etcd says of the environment, without timestamps, ports and ids. */
function readinessLines(output: string): string[] {
  return output
    .replaceAll("\r", "")
    .split("\n")
    .filter((line) => /ready to serve client requests|enabled capabilities for version|published|insecurely|pkg\/flags:/.test(line))
    .map((line) =>
      line
        .replace(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} /, "")
        .replace(/127\.0\.0\.1:\d+/g, "127.0.0.1:<port>")
        .replace(/to cluster [0-9a-f]+/, "to cluster <id>"),
    )
    .sort();
}

/** Starts both, checks they serve, stops both with `signal`; returns what each printed and how it ended. */
async function runBoth(options: Parameters<typeof start>[1], signal: NodeJS.Signals): Promise<Record<Kind, { lines: string[]; ended: string }>> {
  const results = {} as Record<Kind, { lines: string[]; ended: string }>;
  for (const kind of ["etcd", "tetcd"] as const) {
    const server = await start(kind, options);
    try {
      await waitForReady(server);
      const health = etcdctl(server.endpoint, ["endpoint", "health"]);
      assert.equal(health.status, 0, `${kind}: endpoint health\n${health.stderr}`);
      assert.match(health.stdout + health.stderr, /is healthy: successfully committed proposal/);
      const ended = await stopWith(server, signal);
      results[kind] = { lines: readinessLines(server.output()), ended };
    } finally {
      server.child.kill("SIGKILL");
      rmSync(join(server.dataDir, ".."), { recursive: true, force: true });
    }
  }
  return results;
}

describe("etcd's process contract, beside etcd 3.4", { timeout: 240_000 }, () => {
  test("extra ETCD_* variables and ETCD_UNSUPPORTED_ARCH: both start, warn alike, and end by SIGTERM", async () => {
    const environment = { ETCD_UNSUPPORTED_ARCH: goArch, ETCD_SOMETHING_ELSE: "1", ETCD_SNAPSHOT_COUNT: "5000", ETCDCTL_API: "3" };
    const { etcd, tetcd } = await runBoth({ environment }, "SIGTERM");
    assert.ok(etcd.lines.some((line) => line.includes("ready to serve client requests")), etcd.lines.join("\n"));
    assert.ok(etcd.lines.includes(`W | pkg/flags: unrecognized environment variable ETCD_UNSUPPORTED_ARCH=${goArch}`), etcd.lines.join("\n"));
    assert.deepEqual(tetcd.lines, etcd.lines);
    assert.equal(etcd.ended, "signal SIGTERM");
    assert.equal(tetcd.ended, etcd.ended);
  });

  test("under a pseudo-terminal: both start, and end by SIGINT with the same status", async () => {
    const { etcd, tetcd } = await runBoth({ stdin: "pty" }, "SIGINT");
    assert.ok(etcd.lines.length >= 3, etcd.lines.join("\n"));
    assert.deepEqual(tetcd.lines, etcd.lines);
    assert.equal(etcd.ended, "exit 130", "script reports the server's death by SIGINT as 128 + 2");
    assert.equal(tetcd.ended, etcd.ended);
  });

  test("with standard input closed and --logger zap: both start and end by SIGTERM", async () => {
    const { etcd, tetcd } = await runBoth({ stdin: "closed", args: ["--logger", "zap"] }, "SIGTERM");
    for (const message of ["enabled capabilities for version", "published local member to cluster through raft", "serving client traffic insecurely; this is strongly discouraged!"]) {
      assert.ok(etcd.lines.some((line) => line.includes(`"msg":"${message}"`)), `etcd says "${message}"`);
      assert.ok(tetcd.lines.some((line) => line.includes(`"msg":"${message}"`)), `tetcd says "${message}"`);
    }
    assert.equal(etcd.ended, "signal SIGTERM");
    assert.equal(tetcd.ended, etcd.ended);
  });

  test("a variable that a flag on the command line shadows: both refuse to start, with status 1 and etcd's words", async () => {
    for (const kind of ["etcd", "tetcd"] as const) {
      const server = await start(kind, { environment: { ETCD_NAME: "from-environment" }, args: ["--name", "default"] });
      const timer = setTimeout(() => server.child.kill("SIGKILL"), stopTimeoutMs);
      const { code } = await server.exited;
      clearTimeout(timer);
      assert.equal(code, 1, `${kind}:\n${server.output()}`);
      assert.match(server.output(), /conflicting environment variable "ETCD_NAME" is shadowed by corresponding command-line flag/);
      rmSync(join(server.dataDir, ".."), { recursive: true, force: true });
    }
  });
});

/** Each file under `directory` with its size and modification time. */
function listing(directory: string): string[] {
  return readdirSync(directory, { recursive: true, encoding: "utf8" })
    .map((path) => {
      const stats = statSync(join(directory, path));
      return `${path} ${stats.isDirectory() ? "dir" : `${stats.size} ${stats.mtimeMs}`}`;
    })
    .sort();
}

describe("a data dir in use", { timeout: 60_000 }, () => {
  test("a second process on a running member's data dir is refused at once and changes nothing", async () => {
    const first = await start("tetcd");
    try {
      await waitForReady(first);
      assert.equal(etcdctl(first.endpoint, ["put", "k", "v"]).status, 0);
      await sleep(300);
      const before = listing(first.dataDir);
      const second = await start("tetcd", { dataDir: first.dataDir });
      const timer = setTimeout(() => second.child.kill("SIGKILL"), stopTimeoutMs);
      const { code } = await second.exited;
      clearTimeout(timer);
      assert.equal(code, 1, second.output());
      assert.match(second.output(), new RegExp(`data dir .* is in use by another process \\(pid ${first.child.pid}\\)`));
      assert.deepEqual(listing(first.dataDir), before, "the data dir is as it was");
      assert.match(etcdctl(first.endpoint, ["get", "k"]).stdout, /^k\nv\n$/, "the first member still serves");
      // After a kill -9, the lock goes with the process: a new member starts on the same data dir.
      first.child.kill("SIGKILL");
      await first.exited;
      const third = await start("tetcd", { dataDir: first.dataDir });
      try {
        await waitForReady(third);
        assert.match(etcdctl(third.endpoint, ["get", "k"]).stdout, /^k\nv\n$/);
      } finally {
        third.child.kill("SIGKILL");
      }
    } finally {
      first.child.kill("SIGKILL");
      rmSync(join(first.dataDir, ".."), { recursive: true, force: true });
    }
  });
});

describe("a stop under load", { timeout: 60_000 }, () => {
  test("SIGTERM while 16 writers put: every put is answered or failed, and every acknowledged one is there after a restart", async () => {
    const first = await start("tetcd");
    try {
      await waitForReady(first);
      const load = new WriteLoad([first.endpoint], 16);
      await load.waitForMore(500);
      const ended = await stopWith(first, "SIGTERM");
      assert.equal(ended, "signal SIGTERM", first.output().slice(-2000));
      // Writers whose puts were in flight hear an answer or an error: stop() returns only when every writer has.
      await load.stop();
      assert.ok(load.acknowledged.size >= 500);
      const second = await start("tetcd", { dataDir: first.dataDir });
      try {
        await waitForReady(second);
        assert.deepEqual(await missingFrom(second.endpoint, load.acknowledged), [], "no acknowledged put is lost by a clean stop");
      } finally {
        second.child.kill("SIGKILL");
      }
    } finally {
      first.child.kill("SIGKILL");
      rmSync(join(first.dataDir, ".."), { recursive: true, force: true });
    }
  });
});
