/**
 * A fault-injecting TCP proxy in front of one member's peer port.
 *
 * The cluster harness (cluster.ts) advertises each member's peer URL as the
 * URL of that member's own proxy, so every peer connection *into* member j
 * passes through proxy j, whoever dialled it. A proxy can:
 *
 * - `partition()`: refuse new connections and close the open ones, in both
 *   directions, until `heal()`;
 * - `block(sources)`: the same, but only for connections dialled by the named
 *   sources (see below), so that a cut between two groups of members leaves
 *   the links inside each group alone;
 * - `setDelay(ms)`: hold every chunk, both ways, for `ms` before forwarding it
 *   (order is kept).
 *
 * Why the source matters. etcd's peer transport (rafthttp) carries messages
 * from i to j on a stream that *j* dialled to i, and falls back to POSTs that
 * *i* dials to j. Cutting only the connections into member i therefore cuts
 * nothing: i's messages go out through its POSTs and come back through the
 * stream i dialled. A cut has to know, for each connection into j, which member
 * dialled it. All members dial the same advertised URL, so the URL cannot say;
 * the HTTP header `X-Server-From` could, but only for etcd's protocol, not for
 * tetcd's. `loopbackDialer` answers it for any protocol: the accepted socket's
 * remote port is the dialler's local port, /proc/net/tcp maps that socket to an
 * inode, and the process holding that inode among its descriptors is the
 * dialler. This is Linux-only, and it reads only processes the test started.
 *
 * While any source is blocked, a connection whose dialler cannot be named
 * (it closed before it was looked up, or it is not a member) is refused: a
 * partition errs on the side of cutting.
 */
import { readdir, readFile, readlink } from "node:fs/promises";
import * as net from "node:net";

export interface ProxyTarget {
  host: string;
  port: number;
}

export interface ProxyOptions {
  /** Names the dialler of an accepted connection; undefined when unknown. */
  identify?: (socket: net.Socket, proxyPort: number) => Promise<string | undefined>;
}

interface Link {
  readonly source: string | undefined;
  readonly client: net.Socket;
  upstream: net.Socket | undefined;
}

export class TcpProxy {
  private readonly links = new Set<Link>();
  private readonly blocked = new Set<string>();
  private partitioned = false;
  private delayMs = 0;
  private closed = false;

  private constructor(
    private readonly server: net.Server,
    private readonly target: ProxyTarget,
    private readonly options: ProxyOptions,
    readonly port: number,
  ) {}

  /** A proxy on a free loopback port forwarding to `target`. */
  static async start(target: ProxyTarget, options: ProxyOptions = {}): Promise<TcpProxy> {
    const server = net.createServer({ pauseOnConnect: true });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    const proxy = new TcpProxy(server, target, options, (server.address() as net.AddressInfo).port);
    server.on("connection", (client) => void proxy.accept(client));
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Open connections through the proxy. */
  get connectionCount(): number {
    return this.links.size;
  }

  /** Drops every connection, both directions, until `heal`. */
  partition(): void {
    this.partitioned = true;
    this.enforce();
  }

  /** Drops the connections dialled by `sources` (names given by `identify`) until `heal` or `unblock`. */
  block(sources: Iterable<string>): void {
    for (const source of sources) this.blocked.add(source);
    this.enforce();
  }

  unblock(sources: Iterable<string>): void {
    for (const source of sources) this.blocked.delete(source);
  }

  /** Lifts `partition` and every `block`; the delay stays. */
  heal(): void {
    this.partitioned = false;
    this.blocked.clear();
  }

  /** Holds each chunk, both directions, for `ms` before forwarding it. */
  setDelay(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`delay ${ms} ms`);
    this.delayMs = ms;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const link of this.links) drop(link);
    this.links.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private admits(source: string | undefined): boolean {
    if (this.closed || this.partitioned) return false;
    if (this.blocked.size === 0) return true;
    return source !== undefined && !this.blocked.has(source);
  }

  private enforce(): void {
    for (const link of this.links) {
      if (!this.admits(link.source)) {
        drop(link);
        this.links.delete(link);
      }
    }
  }

  private async accept(client: net.Socket): Promise<void> {
    client.on("error", () => {});
    // A quick refusal, without looking the dialler up, when nothing could be admitted.
    if (this.closed || this.partitioned) return void client.destroy();
    let source: string | undefined;
    try {
      source = this.options.identify === undefined ? undefined : await this.options.identify(client, this.port);
    } catch {
      source = undefined;
    }
    if (!this.admits(source) || client.destroyed) return void client.destroy();
    const link: Link = { source, client, upstream: undefined };
    this.links.add(link);
    const upstream = net.connect(this.target.port, this.target.host);
    link.upstream = upstream;
    upstream.on("error", () => {});
    for (const socket of [client, upstream]) {
      socket.on("close", () => {
        drop(link);
        this.links.delete(link);
      });
    }
    this.forward(client, upstream);
    this.forward(upstream, client);
    client.resume();
  }

  /** Copies `from` to `to`, each chunk held for the current delay, in order. */
  private forward(from: net.Socket, to: net.Socket): void {
    let releaseAtMs = 0;
    let pending = 0;
    const pendingMax = 256;
    from.on("data", (chunk: Buffer) => {
      const delayMs = this.delayMs;
      if (delayMs === 0 && pending === 0) {
        if (!to.write(chunk)) from.pause();
        return;
      }
      // Never before an earlier chunk: a shortened delay must not reorder.
      releaseAtMs = Math.max(releaseAtMs, Date.now() + delayMs);
      pending += 1;
      if (pending >= pendingMax) from.pause();
      setTimeout(() => {
        pending -= 1;
        if (!to.destroyed) to.write(chunk);
        if (pending < pendingMax && to.writableLength < to.writableHighWaterMark) from.resume();
      }, releaseAtMs - Date.now());
    });
    to.on("drain", () => {
      if (pending < pendingMax) from.resume();
    });
    from.on("end", () => {
      const finish = () => to.end();
      if (pending === 0) finish();
      else setTimeout(finish, Math.max(0, releaseAtMs - Date.now()) + 1);
    });
  }
}

function drop(link: Link): void {
  link.client.destroy();
  link.upstream?.destroy();
}

/**
 * The process, among `owners` (pid → name), that dialled the loopback
 * connection `socket` accepted on `proxyPort`; undefined if none of them holds it.
 */
export async function loopbackDialer(socket: net.Socket, proxyPort: number, owners: ReadonlyMap<number, string>): Promise<string | undefined> {
  const dialPort = socket.remotePort;
  if (dialPort === undefined) return undefined;
  const inode = await socketInode(dialPort, proxyPort);
  if (inode === undefined) return undefined;
  const wanted = `socket:[${inode}]`;
  for (const [pid, name] of owners) {
    let descriptors: string[];
    try {
      descriptors = await readdir(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const descriptor of descriptors) {
      const link = await readlink(`/proc/${pid}/fd/${descriptor}`).catch(() => "");
      if (link === wanted) return name;
    }
  }
  return undefined;
}

/** The inode of the IPv4 socket whose local port is `localPort` and remote port `remotePort`. */
async function socketInode(localPort: number, remotePort: number): Promise<string | undefined> {
  const hex = (port: number) => port.toString(16).toUpperCase().padStart(4, "0");
  const local = `:${hex(localPort)}`;
  const remote = `:${hex(remotePort)}`;
  const table = await readFile("/proc/net/tcp", "utf8");
  for (const line of table.split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
    if (fields.length < 10) continue;
    if (fields[1]!.endsWith(local) && fields[2]!.endsWith(remote)) return fields[9];
  }
  return undefined;
}
