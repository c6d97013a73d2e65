import { execFile, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The compiled tetcd command (tests run from dist/test). */
export const tetcdBin = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "src", "cli", "tetcd.js");

/** Ports this process has handed out: the OS may offer a closed one again, and two members of one test must not get the same. */
const handedOut = new Set<number>();

/** A free TCP port on loopback, never one this process handed out before. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = net.createServer();
      server.unref();
      server.on("error", reject);
      server.listen(0, "127.0.0.1", () => {
        const address = server.address();
        server.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port"))));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

export function temporaryDirectory(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `${prefix}-`));
}

export function hasCommand(command: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${command}`]).status === 0;
}

/** A server process started by a test; `stop` kills it (SIGKILL if it lingers). */
export interface ServerProcess {
  readonly endpoint: string;
  readonly dataDir: string;
  readonly child: ChildProcess;
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

const startTimeoutMs = 20_000;

async function waitForPort(port: number, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + startTimeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}:\n${output()}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = new net.Socket();
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
      socket.connect(port, "127.0.0.1");
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  child.kill("SIGKILL");
  throw new Error(`server did not listen on ${port} within ${startTimeoutMs} ms:\n${output()}`);
}

/**
 * Spawns a server, waits until it listens on `port`, and registers it so that
 * the process-exit hook kills it; `stop` removes `dataDir` only if `ownsDataDir`.
 */
export function track(command: string, args: string[], port: number, dataDir: string, ownsDataDir: boolean): Promise<ServerProcess> {
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  child.stdout!.on("data", (chunk: Buffer) => (log += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (log += chunk.toString()));
  const processes = runningProcesses;
  processes.add(child);
  const server: ServerProcess = {
    endpoint: `127.0.0.1:${port}`,
    dataDir,
    child,
    output: () => log,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
        child.kill(signal);
        const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(timer);
      }
      processes.delete(child);
      if (ownsDataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return waitForPort(port, child, server.output).then(() => server);
}

const runningProcesses = new Set<ChildProcess>();
process.on("exit", () => {
  for (const child of runningProcesses) child.kill("SIGKILL");
});

export interface StartOptions {
  dataDir?: string;
  extraArgs?: string[];
  port?: number;
}

/** Starts tetcd as a child process on a free loopback port. */
export async function startTetcd(options: StartOptions = {}): Promise<ServerProcess> {
  const port = options.port ?? (await freePort());
  const dataDir = options.dataDir ?? temporaryDirectory("tetcd");
  const url = `http://127.0.0.1:${port}`;
  const peer = `http://127.0.0.1:${await freePort()}`;
  const args = [
    tetcdBin,
    "--data-dir", dataDir,
    "--listen-client-urls", url, "--advertise-client-urls", url,
    "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
    ...(options.extraArgs ?? []),
  ];
  return track(process.execPath, args, port, dataDir, options.dataDir === undefined);
}

/** Starts the reference etcd (Debian's etcd-server) on free loopback ports. */
export async function startEtcd(options: StartOptions = {}): Promise<ServerProcess> {
  const port = options.port ?? (await freePort());
  const peerPort = await freePort();
  const dataDir = options.dataDir ?? temporaryDirectory("etcd");
  const url = `http://127.0.0.1:${port}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const args = [
    "--data-dir", dataDir,
    "--listen-client-urls", url, "--advertise-client-urls", url,
    "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
    "--initial-cluster", `default=${peer}`,
    "--logger", "zap", "--log-outputs", "stderr",
    ...(options.extraArgs ?? []),
  ];
  return track("etcd", args, port, dataDir, options.dataDir === undefined);
}

/** Runs etcdctl against `endpoint`; returns its exit status and output. */
export function etcdctl(endpoint: string, args: string[], input?: string): { status: number; stdout: string; stderr: string } {
  const result = spawnSync("etcdctl", [`--endpoints=${endpoint}`, ...args], { input, encoding: "utf8", timeout: 20_000, env: { ...process.env, ETCDCTL_API: "3" } });
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/**
 * Runs etcdctl like `etcdctl`, without blocking the event loop: required
 * while in-process proxies (tcp-proxy.ts) carry a cluster's peer traffic.
 */
export function etcdctlAsync(endpoint: string | string[], args: string[], timeoutMs = 20_000): Promise<{ status: number; stdout: string; stderr: string }> {
  const endpoints = Array.isArray(endpoint) ? endpoint.join(",") : endpoint;
  return new Promise((resolve) => {
    execFile("etcdctl", [`--endpoints=${endpoints}`, ...args], { encoding: "utf8", timeout: timeoutMs, killSignal: "SIGKILL", env: { ...process.env, ETCDCTL_API: "3" } }, (error, stdout, stderr) => {
      const status = error === null ? 0 : typeof error.code === "number" ? error.code : -1;
      resolve({ status, stdout, stderr });
    });
  });
}
