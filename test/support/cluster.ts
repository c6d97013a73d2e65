/**
 * Multi-member clusters of real processes on loopback, for the reference etcd
 * or for tetcd (which takes etcd's flags).
 *
 * Every member gets free client and peer ports and a temporary data directory.
 * With `proxied`, each member also gets a TcpProxy (tcp-proxy.ts) in front of
 * its peer port, and the proxy's URL is the peer URL the cluster knows it by
 * (--initial-advertise-peer-urls, --initial-cluster, `member add`), while the
 * member listens on its real port. Every peer connection into member j then
 * crosses proxy j, which names the member that dialled it (by looking up the
 * dialling socket's owner in /proc), so `partition` can cut exactly the links
 * between groups, in both directions, and leave the links inside each group:
 *
 *     cluster.isolate(0);           // m0 alone | m1 m2 ...
 *     cluster.isolate(0, 1);        // m0 m1 | m2 m3 m4
 *     cluster.partition([0], [1]);  // m0 | m1 | the rest
 *     cluster.heal();
 *
 * A cut closes the open connections that cross it and refuses new ones, so
 * members see connection errors rather than silence.
 *
 * Teardown: `Cluster.stop` kills every member (SIGKILL: nothing is kept) and
 * removes the data directories; processes.ts's exit hook kills any member a
 * failed test left behind. Proxies run in the test process: while a cluster
 * is proxied, never block the event loop (use `etcdctlAsync`, not `etcdctl`).
 */
import { randomBytes } from "node:crypto";
import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import * as http from "node:http";
import type { Socket } from "node:net";
import { etcdctlAsync, freePort, temporaryDirectory, tetcdBin, track, type ServerProcess } from "./processes.js";
import { loopbackDialer, TcpProxy } from "./tcp-proxy.js";

export type ServerKind = "etcd" | "tetcd";

export interface ClusterOptions {
  /** Flags added to every member's command line. */
  extraArgs?: string[];
  /** Puts a fault-injecting proxy in front of every member's peer port. */
  proxied?: boolean;
  /** --heartbeat-interval; 50 unless given. */
  heartbeatMs?: number;
  /** --election-timeout; 500 unless given. */
  electionMs?: number;
  /** How long a member may take to become healthy; 20 s unless given. */
  startTimeoutMs?: number;
  /** The scheme of the peer URLs; "https" needs the peer TLS flags in extraArgs (and no proxy). */
  peerScheme?: "http" | "https";
  /**
   * Every member also listens on (and advertises) an https client URL on a
   * port of its own, next to its http one, which the helpers keep using;
   * needs the client TLS flags in extraArgs.
   */
  secureClientPorts?: boolean;
}

export type WaitFor = "health" | "listening";

export interface ClusterMember {
  readonly name: string;
  /** Position in `Cluster.members`, as `partition` and `isolate` take it. */
  readonly index: number;
  readonly clientUrl: string;
  /** host:port of the client URL, as etcdctl's --endpoints takes it. */
  readonly endpoint: string;
  /** host:port of the https client URL, with `secureClientPorts`. */
  readonly secureEndpoint: string | undefined;
  /** The URL the member listens on for peers. */
  readonly peerUrl: string;
  /** The URL other members dial: the proxy's URL when proxied, else `peerUrl`. */
  readonly advertisedPeerUrl: string;
  readonly dataDir: string;
  readonly proxy: TcpProxy | undefined;
  /** The member's id in hex, as etcdctl prints it; known once the cluster has listed it. */
  id: string | undefined;
  /** The running process, if any. */
  readonly process: ServerProcess | undefined;
  readonly running: boolean;
  /**
   * Starts (or restarts, on the same ports and data) the member. `health`
   * (the default) waits for /health to answer {"health":"true"}, which needs
   * a leader and a quorum; `listening` waits only for the client port.
   */
  start(waitFor?: WaitFor): Promise<void>;
  /** Stops the process with `signal` (SIGTERM by default); the data stays. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** SIGKILL; the data stays. */
  kill(): Promise<void>;
  /** Everything the member's processes wrote so far, across restarts. */
  output(): string;
  /**
   * Runs the member's command line once more, with the values of the given
   * flags replaced (`{ "--name": "other" }`), while the member is stopped,
   * and waits for the process to exit: for starts that must be refused. A
   * process still running after `timeoutMs` is killed and reported as such.
   */
  runToExit(replaced: Record<string, string>, timeoutMs?: number): Promise<{ exitCode: number | null; output: string }>;
}

/** What one member says of itself (etcdctl endpoint status); ids in hex, leader "0" when it knows none. */
export interface MemberStatus {
  id: string;
  leader: string;
  raftTerm: number;
  raftIndex: number;
  isLearner: boolean;
}

export interface JoinOptions {
  learner?: boolean;
  /** Flags added to this member's command line only. */
  extraArgs?: string[];
  /** How long to retry `member add` while it answers "etcdserver: unhealthy cluster"; 10 s unless given, 0 to not retry. */
  unhealthyRetryMs?: number;
}

export interface Cluster {
  readonly kind: ServerKind;
  readonly members: ClusterMember[];
  /** Client endpoints (host:port) of `of`, all members by default. */
  endpoints(of?: readonly ClusterMember[]): string[];
  /** The member's own view (endpoint status), or undefined if it does not answer within `timeoutMs`. */
  status(member: ClusterMember, timeoutMs?: number): Promise<MemberStatus | undefined>;
  /**
   * Waits until every member of `among` that answers agrees on one leader,
   * itself in `among`, and at least a majority of `among` answered; returns it.
   */
  waitForLeader(options?: { among?: readonly ClusterMember[]; timeoutMs?: number }): Promise<ClusterMember>;
  /**
   * `etcdctl member add` for a new member (as a learner if asked), and a
   * member configured with --initial-cluster-state existing from the answer,
   * not yet started. It joins `members`, and `stop` covers it.
   */
  prepareJoin(name: string, options?: JoinOptions): Promise<ClusterMember>;
  /**
   * Cuts the links between the given groups (indexes into `members`), in both
   * directions; the members in no group form one more group. Replaces any
   * earlier cut. Needs `proxied`.
   */
  partition(...groups: number[][]): void;
  /** `partition(indexes)`: the given members keep only each other. */
  isolate(...indexes: number[]): void;
  /** Lifts every cut. */
  heal(): void;
  /** Kills every member, closes the proxies, removes the data. */
  stop(): Promise<void>;
}

const defaults = { heartbeatMs: 50, electionMs: 500, startTimeoutMs: 20_000, unhealthyRetryMs: 10_000 } as const;
const healthPollMs = 100;
const healthRequestTimeoutMs = 2_000;

interface MemberPlan {
  name: string;
  clientPort: number;
  peerPort: number;
  secureClientPort: number | undefined;
  dataDir: string;
  proxy: TcpProxy | undefined;
}

/** Starts `size` members concurrently and waits until all of them are healthy. */
export async function startCluster(kind: ServerKind, size: number, options: ClusterOptions = {}): Promise<Cluster> {
  if (!(Number.isInteger(size) && size >= 1)) throw new RangeError(`cluster size ${size}`);
  const cluster = new ProcessCluster(kind, options);
  try {
    const plans = await Promise.all(Array.from({ length: size }, (_, index) => cluster.plan(`m${index}`)));
    const initialCluster = plans.map((plan) => `${plan.name}=${cluster.advertised(plan)}`).join(",");
    for (const plan of plans) cluster.add(plan, initialCluster, "new", []);
    await Promise.all(cluster.members.map((member) => member.start("listening")));
    await Promise.all(cluster.members.map((member) => waitHealthy(member, cluster.startTimeoutMs)));
    await cluster.learnIds();
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}

class ProcessCluster implements Cluster {
  readonly members: ClusterMember[] = [];
  private readonly token = `tetcd-test-${randomBytes(4).toString("hex")}`;
  readonly startTimeoutMs: number;

  constructor(
    readonly kind: ServerKind,
    private readonly options: ClusterOptions,
  ) {
    this.startTimeoutMs = options.startTimeoutMs ?? defaults.startTimeoutMs;
  }

  async plan(name: string): Promise<MemberPlan> {
    if (this.members.some((member) => member.name === name)) throw new Error(`member ${name} exists`);
    const [clientPort, peerPort] = [await freePort(), await freePort()];
    const identify = (socket: Socket, proxyPort: number) => loopbackDialer(socket, proxyPort, this.owners());
    const proxy = this.options.proxied === true ? await TcpProxy.start({ host: "127.0.0.1", port: peerPort }, { identify }) : undefined;
    const secureClientPort = this.options.secureClientPorts === true ? await freePort() : undefined;
    return { name, clientPort, peerPort, secureClientPort, dataDir: temporaryDirectory(`${this.kind}-${name}`), proxy };
  }

  advertised(plan: MemberPlan): string {
    return plan.proxy?.url ?? `${this.options.peerScheme ?? "http"}://127.0.0.1:${plan.peerPort}`;
  }

  add(plan: MemberPlan, initialCluster: string, state: "new" | "existing", extraArgs: string[]): ClusterMember {
    const clientUrl = `http://127.0.0.1:${plan.clientPort}`;
    const peerUrl = `${this.options.peerScheme ?? "http"}://127.0.0.1:${plan.peerPort}`;
    const advertisedPeerUrl = this.advertised(plan);
    const clientUrls = plan.secureClientPort === undefined ? clientUrl : `${clientUrl},https://127.0.0.1:${plan.secureClientPort}`;
    const args = [
      "--name", plan.name, "--data-dir", plan.dataDir,
      "--listen-client-urls", clientUrls, "--advertise-client-urls", clientUrls,
      "--listen-peer-urls", peerUrl, "--initial-advertise-peer-urls", advertisedPeerUrl,
      "--initial-cluster", initialCluster, "--initial-cluster-state", state, "--initial-cluster-token", this.token,
      "--heartbeat-interval", String(this.options.heartbeatMs ?? defaults.heartbeatMs),
      "--election-timeout", String(this.options.electionMs ?? defaults.electionMs),
      "--logger", "zap", "--log-outputs", "stderr",
      ...(this.options.extraArgs ?? []),
      ...extraArgs,
    ];
    const [command, commandArgs] = this.kind === "etcd" ? ["etcd", args] : [process.execPath, [tetcdBin, ...args]];
    const member = new ProcessMember(plan.name, this.members.length, clientUrl, peerUrl, advertisedPeerUrl, plan, command, commandArgs, this.startTimeoutMs);
    this.members.push(member);
    return member;
  }

  /** pid → name of every running member: who may dial a proxy. */
  owners(): Map<number, string> {
    const owners = new Map<number, string>();
    for (const member of this.members) {
      const pid = member.process?.child.pid;
      if (member.running && pid !== undefined) owners.set(pid, member.name);
    }
    return owners;
  }

  endpoints(of: readonly ClusterMember[] = this.members): string[] {
    return of.map((member) => member.endpoint);
  }

  async learnIds(): Promise<void> {
    const result = await etcdctlAsync(this.endpoints(this.members.filter((member) => member.running)), ["member", "list"]);
    if (result.status !== 0) throw new Error(`member list failed: ${result.stderr}`);
    // 8e9e05c52164694d, started, m0, http://127.0.0.1:1, http://127.0.0.1:2, false
    for (const line of result.stdout.trim().split("\n")) {
      const [id, , name] = line.split(", ");
      const member = this.members.find((candidate) => candidate.name === name);
      if (member !== undefined && id !== undefined) member.id = id;
    }
  }

  async status(member: ClusterMember, timeoutMs = 3_000): Promise<MemberStatus | undefined> {
    const seconds = `${Math.max(1, Math.ceil(timeoutMs / 1000))}s`;
    const result = await etcdctlAsync(member.endpoint, ["endpoint", "status", "-w", "json", `--command-timeout=${seconds}`, `--dial-timeout=${seconds}`], timeoutMs + 2_000);
    if (result.status !== 0) return undefined;
    const [entry] = parseBigJson(result.stdout) as { Status: { header: { member_id: string }; leader?: string; raftTerm?: string; raftIndex?: string; isLearner?: boolean } }[];
    if (entry === undefined) return undefined;
    const status = entry.Status;
    // etcd's JSON leaves out zero values: no leader is a missing `leader`.
    return {
      id: hex(status.header.member_id),
      leader: hex(status.leader ?? 0),
      raftTerm: Number(status.raftTerm ?? 0),
      raftIndex: Number(status.raftIndex ?? 0),
      isLearner: status.isLearner === true,
    };
  }

  async waitForLeader(options: { among?: readonly ClusterMember[]; timeoutMs?: number } = {}): Promise<ClusterMember> {
    const among = options.among ?? this.members.filter((member) => member.running);
    const deadline = Date.now() + (options.timeoutMs ?? 10_000);
    let seen = "";
    while (Date.now() < deadline) {
      const statuses = (await Promise.all(among.map((member) => this.status(member, 1_000)))).filter((status) => status !== undefined);
      const leaders = new Set(statuses.map((status) => status.leader));
      seen = JSON.stringify(statuses);
      const [leaderId] = leaders;
      if (statuses.length * 2 > among.length && leaders.size === 1 && leaderId !== "0") {
        const leader = among.find((member) => member.id === leaderId);
        const confirmed = statuses.some((status) => status.id === leaderId);
        if (leader !== undefined && confirmed) return leader;
      }
      await sleep(healthPollMs);
    }
    throw new Error(`no leader agreed on among ${among.map((member) => member.name).join(", ")}; last statuses: ${seen}`);
  }

  async prepareJoin(name: string, options: JoinOptions = {}): Promise<ClusterMember> {
    const plan = await this.plan(name);
    const running = this.members.filter((member) => member.running);
    const args = ["member", "add", name, `--peer-urls=${this.advertised(plan)}`, ...(options.learner === true ? ["--learner"] : [])];
    // etcd refuses a reconfiguration ("etcdserver: unhealthy cluster") until every voter has
    // been connected to the leader for 5 s (--strict-reconfig-check): a fresh cluster must wait.
    const deadline = Date.now() + (options.unhealthyRetryMs ?? defaults.unhealthyRetryMs);
    let result = await etcdctlAsync(this.endpoints(running), args);
    while (result.status !== 0 && result.stderr.includes("etcdserver: unhealthy cluster") && Date.now() < deadline) {
      await sleep(250);
      result = await etcdctlAsync(this.endpoints(running), args);
    }
    if (result.status !== 0) {
      await plan.proxy?.close();
      rmSync(plan.dataDir, { recursive: true, force: true });
      throw new Error(`member add ${name} failed (${result.status}): ${result.stderr}`);
    }
    // Member 5f2b8a2c4c2d9e1a added to cluster 2e3fa0e6bd58d4a2
    // ETCD_INITIAL_CLUSTER="m0=http://127.0.0.1:1,m3=http://127.0.0.1:2"
    const initialCluster = /^ETCD_INITIAL_CLUSTER="([^"]*)"$/m.exec(result.stdout)?.[1];
    // etcdctl prints ids with %16x: a short id comes with a leading space ("Member  601fbaeae1dde33 added").
    const id = /^Member +([0-9a-f]+) added/m.exec(result.stdout)?.[1];
    if (initialCluster === undefined || id === undefined) throw new Error(`unexpected member add output:\n${result.stdout}`);
    const member = this.add(plan, initialCluster, "existing", options.extraArgs ?? []);
    member.id = id;
    return member;
  }

  partition(...groups: number[][]): void {
    const groupOf = new Map<number, number>();
    groups.forEach((group, groupIndex) => {
      for (const index of group) {
        if (this.members[index] === undefined) throw new RangeError(`no member ${index}`);
        if (groupOf.has(index)) throw new Error(`member ${index} is in two groups`);
        groupOf.set(index, groupIndex);
      }
    });
    for (const member of this.members) {
      if (member.proxy === undefined) throw new Error("partition needs a proxied cluster");
      member.proxy.heal();
    }
    const group = (member: ClusterMember) => groupOf.get(member.index) ?? groups.length;
    for (const member of this.members) {
      const others = this.members.filter((other) => group(other) !== group(member));
      member.proxy!.block(others.map((other) => other.name));
    }
  }

  isolate(...indexes: number[]): void {
    this.partition(indexes);
  }

  heal(): void {
    for (const member of this.members) member.proxy?.heal();
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((member) => member.kill()));
    await Promise.all(this.members.map((member) => member.proxy?.close()));
    for (const member of this.members) rmSync(member.dataDir, { recursive: true, force: true });
  }
}

class ProcessMember implements ClusterMember {
  id: string | undefined;
  private current: ServerProcess | undefined;
  private earlierOutput = "";
  readonly endpoint: string;
  readonly secureEndpoint: string | undefined;
  readonly dataDir: string;
  readonly proxy: TcpProxy | undefined;

  constructor(
    readonly name: string,
    readonly index: number,
    readonly clientUrl: string,
    readonly peerUrl: string,
    readonly advertisedPeerUrl: string,
    plan: MemberPlan,
    private readonly command: string,
    private readonly args: string[],
    private readonly startTimeoutMs: number,
  ) {
    this.endpoint = `127.0.0.1:${plan.clientPort}`;
    this.secureEndpoint = plan.secureClientPort === undefined ? undefined : `127.0.0.1:${plan.secureClientPort}`;
    this.dataDir = plan.dataDir;
    this.proxy = plan.proxy;
  }

  get process(): ServerProcess | undefined {
    return this.current;
  }

  get running(): boolean {
    const child = this.current?.child;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  async start(waitFor: WaitFor = "health"): Promise<void> {
    if (this.running) throw new Error(`member ${this.name} is running`);
    this.retire();
    const port = Number(new URL(this.clientUrl).port);
    this.current = await track(this.command, this.args, port, this.dataDir, false);
    if (waitFor === "health") await waitHealthy(this, this.startTimeoutMs);
  }

  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    await this.current?.stop(signal);
  }

  kill(): Promise<void> {
    return this.stop("SIGKILL");
  }

  output(): string {
    return this.earlierOutput + (this.current?.output() ?? "");
  }

  async runToExit(replaced: Record<string, string>, timeoutMs = 15_000): Promise<{ exitCode: number | null; output: string }> {
    if (this.running) throw new Error(`member ${this.name} is running`);
    const args = [...this.args];
    for (const [flag, value] of Object.entries(replaced)) {
      const at = args.indexOf(flag);
      if (at < 0) throw new Error(`member ${this.name} has no ${flag} flag`);
      args[at + 1] = value;
    }
    const child = spawn(this.command, args, { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => {
      output += `\n[still running after ${timeoutMs} ms: killed]`;
      child.kill("SIGKILL");
    }, timeoutMs);
    // "close" comes once the output is read to its end, unlike "exit".
    const exitCode = await new Promise<number | null>((resolve, reject) => {
      child.once("error", reject);
      child.once("close", (code) => resolve(code));
    }).finally(() => clearTimeout(timer));
    return { exitCode, output };
  }

  private retire(): void {
    if (this.current === undefined) return;
    this.earlierOutput += this.current.output();
    this.current = undefined;
  }
}

/** Waits until the member's /health answers {"health":"true"}. */
async function waitHealthy(member: ClusterMember, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    if (!member.running) throw new Error(`member ${member.name} exited:\n${member.output()}`);
    last = await healthOf(member.clientUrl);
    try {
      if ((JSON.parse(last) as { health?: unknown }).health === "true") return;
    } catch {
      // Not JSON yet (connection refused, or an error text): keep polling.
    }
    await sleep(healthPollMs);
  }
  throw new Error(`member ${member.name} not healthy within ${timeoutMs} ms (last /health: ${last}):\n${member.output().slice(-4000)}`);
}

function healthOf(clientUrl: string): Promise<string> {
  return new Promise((resolve) => {
    const request = http.get(`${clientUrl}/health`, { timeout: healthRequestTimeoutMs }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (body += chunk));
      response.on("end", () => resolve(body));
      response.on("error", (error) => resolve(String(error)));
    });
    request.on("timeout", () => request.destroy(new Error("timeout")));
    request.on("error", (error) => resolve(String(error)));
  });
}

/** JSON.parse with integers too large for a double kept exactly, as strings. */
export function parseBigJson(text: string): unknown {
  return JSON.parse(text.replace(/([:,\[]\s*)(\d{16,})(?=\s*[,}\]])/g, '$1"$2"'));
}

/** A uint64 (decimal, as etcd's JSON has it) in hex, as etcdctl's tables have it. */
export function hex(decimal: string | number): string {
  return BigInt(decimal).toString(16);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
