import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { clientTlsArgs, enableBenchAuth, type BenchSecurity } from "./security.js";

/** Servers for benchmarks: tetcd from this build, or the reference etcd when installed. */
const here = dirname(fileURLToPath(import.meta.url));

export interface BenchServer {
  name: string;
  endpoint: string;
  pid: number;
  stop(): Promise<void>;
}

export function etcdInstalled(): boolean {
  return spawnSync("sh", ["-c", "command -v etcd"]).status === 0;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess): Promise<void> {
  for (let attempt = 0; attempt < 400; attempt++) {
    if (child.exitCode !== null) throw new Error("server exited during start");
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, "127.0.0.1", () => {
        socket.destroy();
        resolve(true);
      });
      socket.on("error", () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`no listener on ${port}`);
}

export async function startBenchServer(name: "tetcd" | "etcd", extraArgs: readonly string[] = [], security: BenchSecurity = {}): Promise<BenchServer> {
  const port = await freePort();
  const peerPort = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), `bench-${name}-`));
  const { scheme, args: tlsArgs } = clientTlsArgs(security);
  const url = `${scheme}://127.0.0.1:${port}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const common = ["--data-dir", dataDir, "--listen-client-urls", url, "--advertise-client-urls", url, "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", `default=${peer}`, ...tlsArgs];
  const child =
    name === "tetcd"
      ? spawn(process.execPath, [join(here, "..", "..", "src", "cli", "tetcd.js"), ...common, "--log-level", "warn", ...extraArgs], { stdio: "ignore" })
      : spawn("etcd", [...common, "--logger", "zap", "--log-level", "warn", ...extraArgs], { stdio: "ignore" });
  await waitForPort(port, child);
  if (security.auth === true) enableBenchAuth(`127.0.0.1:${port}`, security);
  return {
    name,
    endpoint: `127.0.0.1:${port}`,
    pid: child.pid!,
    async stop() {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A cluster of `size` members on loopback, started together; the load is spread over `endpoints`. */
export interface BenchCluster {
  name: string;
  endpoints: string[];
  stop(): Promise<void>;
}

export async function startBenchCluster(name: "tetcd" | "etcd", size: number, extraArgs: readonly string[] = [], security: BenchSecurity = {}): Promise<BenchCluster> {
  const { scheme, args: tlsArgs } = clientTlsArgs(security);
  const members = await Promise.all(
    Array.from({ length: size }, async (_, index) => ({ name: `m${index}`, port: await freePort(), peerPort: await freePort(), dataDir: mkdtempSync(join(tmpdir(), `bench-${name}-m${index}-`)) })),
  );
  const initialCluster = members.map((member) => `${member.name}=http://127.0.0.1:${member.peerPort}`).join(",");
  const children = members.map((member) => {
    const url = `${scheme}://127.0.0.1:${member.port}`;
    const peer = `http://127.0.0.1:${member.peerPort}`;
    const common = [
      ...tlsArgs,
      "--name", member.name, "--data-dir", member.dataDir,
      "--listen-client-urls", url, "--advertise-client-urls", url,
      "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
      "--initial-cluster", initialCluster, "--initial-cluster-token", `bench-${name}`,
    ];
    return name === "tetcd"
      ? spawn(process.execPath, [join(here, "..", "..", "src", "cli", "tetcd.js"), ...common, "--log-level", "warn", ...extraArgs], { stdio: "ignore" })
      : spawn("etcd", [...common, "--logger", "zap", "--log-level", "warn", ...extraArgs], { stdio: "ignore" });
  });
  await Promise.all(members.map((member, index) => waitForPort(member.port, children[index]!)));
  if (security.auth === true) enableBenchAuth(`127.0.0.1:${members[0]!.port}`, security);
  return {
    name,
    endpoints: members.map((member) => `127.0.0.1:${member.port}`),
    async stop() {
      await Promise.all(
        children.map(async (child) => {
          const exited = new Promise((resolve) => child.once("exit", resolve));
          child.kill("SIGTERM");
          const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
          await exited;
          clearTimeout(timer);
        }),
      );
      for (const member of members) rmSync(member.dataDir, { recursive: true, force: true });
    },
  };
}

/** Resident memory of a process, in all and split into anonymous (heap) and file-backed (mapped files), from /proc. */
export function residentMemory(pid: number): { total: number; anonymous: number; file: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const field = (name: string): number => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN) * 1024;
  return { total: field("VmRSS"), anonymous: field("RssAnon"), file: field("RssFile") };
}

/** p-th quantile (0..1) of sorted values. */
export function quantile(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))]!;
}
