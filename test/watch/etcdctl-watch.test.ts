import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { etcdctl, startEtcd, startTetcd, type ServerProcess } from "../support/processes.js";

/**
 * The real `etcdctl watch` (etcd 3.4's client) against tetcd and etcd: the
 * same history, the same watch command, the same writes while it runs; what it
 * prints must be the same once ids and raft term are masked. `etcdctl watch`
 * runs until killed: it is stopped once its output has been quiet for a while.
 * Every watch starts at a revision (--rev), so that what it prints does not
 * depend on when it connected.
 */
const quietMs = 400;
const watchRunMaxMs = 10_000;

let servers: ServerProcess[] = [];

/** History both servers start with: revisions 2..7. */
const history: string[][] = [
  ["put", "k", "v1"],
  ["put", "k", "v2"],
  ["put", "p/1", "x"],
  ["del", "k"],
  ["put", "k", "v3"],
  ["put", "b", "bb"],
];

/** Writes made while each watch runs. */
const writesWhileWatching: string[][] = [
  ["put", "k", "live"],
  ["put", "p/2", "y"],
  ["del", "p/", "--prefix"],
  ["txn"],
];
const txnInput = "\nput k fromtxn\nput c cc\n\n\n";

before(async () => {
  servers = await Promise.all([startTetcd(), startEtcd()]);
  for (const server of servers) {
    for (const args of history) assert.equal(etcdctl(server.endpoint, args).status, 0);
  }
});

after(async () => {
  await Promise.all(servers.map((server) => server.stop()));
});

interface WatchOutput {
  stdout: string;
  stderr: string;
  code: number | null;
}

/** Runs `etcdctl watch` with `args`, makes the writes, and stops it once quiet. */
async function runWatch(server: ServerProcess, args: string[], input?: string): Promise<WatchOutput> {
  const child = spawn("etcdctl", [`--endpoints=${server.endpoint}`, ...args], { env: { ...process.env, ETCDCTL_API: "3" }, stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  let lastOutput = Date.now();
  child.stdout.on("data", (chunk: Buffer) => ((stdout += chunk.toString()), (lastOutput = Date.now())));
  child.stderr.on("data", (chunk: Buffer) => ((stderr += chunk.toString()), (lastOutput = Date.now())));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let killed = false;
  try {
    if (input !== undefined) child.stdin.write(input);
    // The history first, in the catch-up response whose header revision is the revision of that moment; then live writes.
    await quiet(child, () => lastOutput, () => stdout !== "");
    for (const write of writesWhileWatching) {
      assert.equal(etcdctl(server.endpoint, write, write[0] === "txn" ? txnInput : undefined).status, 0, `etcdctl ${write.join(" ")}`);
    }
    // Quiet is counted from the last write on: its events may still be on their way.
    lastOutput = Date.now();
    await quiet(child, () => lastOutput, () => true);
  } finally {
    killed = child.exitCode === null;
    if (killed) child.kill("SIGKILL");
  }
  const code = await exited;
  return { stdout: mask(stdout), stderr: mask(stderr), code: killed ? null : code };
}

/** Waits until the process exited, or printed something (when `started` says so) and was quiet for `quietMs`. */
async function quiet(child: ChildProcess, lastOutput: () => number, started: () => boolean): Promise<void> {
  const begin = Date.now();
  while (child.exitCode === null && (Date.now() - lastOutput() < quietMs || !started()) && Date.now() - begin < watchRunMaxMs) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function mask(text: string): string {
  return text
    .replace(/"(cluster_id|member_id|raft_term)":\d+/g, '"$1":0')
    .replace(/"(ClusterID|MemberID|RaftTerm)" : \d+/g, '"$1" : 0');
}

const cases: Array<{ name: string; args: string[]; input?: string; stdinOpen?: boolean }> = [
  { name: "one key", args: ["watch", "k", "--rev=2"] },
  { name: "a prefix", args: ["watch", "--prefix", "p/", "--rev=2"] },
  { name: "a range", args: ["watch", "a", "c", "--rev=3"] },
  { name: "previous values", args: ["watch", "k", "--prev-kv", "--rev=3"] },
  { name: "json", args: ["watch", "-w", "json", "--prev-kv", "--prefix", "", "--rev=2"] },
  { name: "fields", args: ["watch", "-w", "fields", "k", "--rev=4"] },
  { name: "exec form", args: ["watch", "k", "--rev=2", "--", "sh", "-c", 'echo "$ETCD_WATCH_EVENT_TYPE $ETCD_WATCH_KEY=$ETCD_WATCH_VALUE at $ETCD_WATCH_REVISION"'] },
  { name: "interactive", args: ["watch", "-i"], input: "watch --prefix p/ --rev=2 --prev-kv\n" },
];

describe("etcdctl watch against tetcd and etcd 3.4", () => {
  for (const { name, args, input } of cases) {
    test(`${name}: ${args.join(" ")}`, async () => {
      const [ours, reference] = [await runWatch(servers[0]!, args, input), await runWatch(servers[1]!, args, input)];
      assert.notEqual(reference.stdout, "", "etcd printed events");
      assert.deepEqual(ours, reference);
    });
  }

  test("a watch from a compacted revision is canceled with etcd's message and exit status", async () => {
    for (const server of servers) assert.equal(etcdctl(server.endpoint, ["compact", "4"]).status, 0);
    const [ours, reference] = [await runWatch(servers[0]!, ["watch", "k", "--rev=2"]), await runWatch(servers[1]!, ["watch", "k", "--rev=2"])];
    assert.match(reference.stderr, /compacted/);
    assert.deepEqual(ours, reference);
  });
});
