import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** A server started for a benchmark: tetcd (the built command) or real etcd, on loopback ports. */
export interface BenchServer {
  readonly name: "tetcd" | "etcd";
  readonly endpoint: string;
  readonly pid: number;
  stop(): Promise<void>;
}

const startTimeoutMs = 20_000;
const tetcdBin = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "src", "cli", "tetcd.js");

export function etcdInstalled(): boolean {
  return spawnSync("sh", ["-c", "command -v etcd"]).status === 0;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + startTimeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, "127.0.0.1");
      socket.once("connect", () => (socket.destroy(), resolve(true)));
      socket.once("error", () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`server did not listen on ${port}`);
}

export async function startServer(name: "tetcd" | "etcd", extraArgs: string[] = []): Promise<BenchServer> {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), `bench-watch-${name}-`));
  const url = `http://127.0.0.1:${port}`;
  const common = ["--data-dir", dataDir, "--listen-client-urls", url, "--advertise-client-urls", url, ...extraArgs];
  let child: ChildProcess;
  if (name === "tetcd") {
    child = spawn(process.execPath, [tetcdBin, ...common], { stdio: "ignore" });
  } else {
    const peer = `http://127.0.0.1:${await freePort()}`;
    const args = [...common, "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", `default=${peer}`, "--log-level", "error"];
    child = spawn("etcd", args, { stdio: "ignore" });
  }
  await waitForPort(port, child);
  return {
    name,
    endpoint: `127.0.0.1:${port}`,
    pid: child.pid!,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Resident memory of a process, from /proc. */
export function residentBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  if (match === null) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]) * 1024;
}
