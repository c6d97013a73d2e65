import { createHash } from "node:crypto";
import { mkdirSync, realpathSync, rmSync } from "node:fs";
import * as net from "node:net";
import { join } from "node:path";
import { listenOnPath } from "../pkg/listen-on-path.js";
import { ConfigError } from "./flag-parse.js";

/** How long a refused start waits for the holder to say its pid. */
const holderAnswerTimeoutMs = 1_000;

/**
 * Keeps a second process from opening a directory that a running member
 * uses. etcd holds file locks on its backend and WAL, and a second etcd
 * waits on them; tetcd refuses at once, before it changes anything.
 *
 * The lock is a Unix socket the member listens on, and answers with its pid.
 * On Linux it lives in the abstract namespace, named after the directory's
 * real path, so the kernel releases it whenever the process ends, kill -9
 * included. Elsewhere it is a socket file in the directory, taken over when
 * nothing answers on it.
 */
export class DirectoryLock {
  private constructor(
    private readonly server: net.Server,
    private readonly socketFile: string | undefined,
  ) {}

  /** Creates `directory` if needed and locks it, or refuses with a ConfigError naming the holder. */
  static async acquire(directory: string): Promise<DirectoryLock> {
    mkdirSync(directory, { recursive: true, mode: 0o700 });
    const realPath = realpathSync(directory);
    const abstract = process.platform === "linux";
    const address = abstract ? `\0tetcd-${createHash("sha256").update(realPath).digest("hex").slice(0, 40)}` : join(realPath, ".tetcd.lock");
    for (let attempt = 0; ; attempt++) {
      const server = net.createServer((socket) => socket.end(`${process.pid}\n`));
      try {
        await listenOnPath(server, address);
        server.unref();
        return new DirectoryLock(server, abstract ? undefined : address);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "EADDRINUSE") throw error;
        const holder = await askHolder(address);
        if (holder === undefined && !abstract && attempt === 0) {
          // A socket file left by a process that ended: nothing listens on it.
          rmSync(address, { force: true });
          continue;
        }
        throw new ConfigError(`data dir ${directory} is in use by another process${holder === undefined ? "" : ` (pid ${holder})`}; stop it first`);
      }
    }
  }

  release(): Promise<void> {
    return new Promise<void>((resolve) => this.server.close(() => resolve())).then(() => {
      if (this.socketFile !== undefined) rmSync(this.socketFile, { force: true });
    });
  }
}

/** The pid the holder of the lock answers with, or undefined if nothing answers. */
function askHolder(address: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    let answer = "";
    const socket = net.connect(address);
    const timer = setTimeout(() => socket.destroy(), holderAnswerTimeoutMs);
    socket.on("data", (chunk: Buffer) => (answer += chunk.toString()));
    socket.on("error", () => undefined);
    socket.on("close", () => {
      clearTimeout(timer);
      const pid = answer.trim();
      resolve(/^[0-9]+$/.test(pid) ? pid : undefined);
    });
  });
}
