// `etcdctl lease ...` and `put --lease` against a fresh etcd and a fresh tetcd.
// Lease ids are chosen by each server, so each server's own ids are put into
// its commands and masked in its output; a remaining TTL may differ by the
// second that passes between the two runs. Everything else must match.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { normalize, Pair, runCtl, type Normalized, type OutputKind } from "./harness.js";

interface LeaseStep {
  /** Arguments; "$1", "$2" stand for the leases granted by the first and second `lease grant`. */
  args: string[];
  kind?: OutputKind;
  /** Wait this long before the step (for expiry). */
  waitMs?: number;
  /** Output lines after the first in no particular order (etcd lists leases from a Go map). */
  unordered?: boolean;
}

/**
 * A lease's attached keys in sorted order: etcd collects them from a Go map,
 * so their order differs from run to run (text `attached keys([a b])`, JSON
 * `"keys":[...]`).
 */
function sortAttachedKeys(text: string): string {
  return text
    .replace(/attached keys\(\[([^\]]*)\]\)/g, (_, keys: string) => `attached keys([${keys.split(" ").sort().join(" ")}])`)
    .replace(/"keys":\[([^\]]*)\]/g, (_, keys: string) => `"keys":[${keys.split(",").sort().join(",")}]`);
}

const script: LeaseStep[] = [
  { args: ["lease", "grant", "60"] },
  { args: ["lease", "grant", "1"] },
  { args: ["put", "k1", "v1", "--lease=$1"] },
  { args: ["put", "k2", "v2", "--lease=$1"] },
  { args: ["put", "k3", "v3", "--lease=$2"] },
  { args: ["get", "k", "--prefix", "-w", "json"], kind: "json" },
  { args: ["lease", "timetolive", "$1"] },
  { args: ["lease", "timetolive", "$1", "--keys"] },
  { args: ["lease", "timetolive", "$1", "--keys", "-w", "json"], kind: "json" },
  { args: ["lease", "list"], unordered: true },
  { args: ["lease", "keep-alive", "--once", "$1"] },
  { args: ["lease", "keep-alive", "--once", "1234"] },
  { args: ["lease", "timetolive", "1234"] },
  { args: ["lease", "revoke", "1234"] },
  { args: ["lease", "grant", "9000000001"] },
  { args: ["put", "k4", "v", "--lease=1234"] },
  { args: ["put", "k2", "v2b", "--ignore-lease"] },
  { args: ["get", "k2", "-w", "json"], kind: "json" },
  { args: ["lease", "revoke", "$1"] },
  { args: ["get", "k", "--prefix"] },
  { args: ["lease", "timetolive", "$1"] },
  // The second lease (TTL raised to the 2 s minimum) expires with its key.
  { args: ["get", "k3"], waitMs: 4000 },
  { args: ["lease", "timetolive", "$2"] },
  { args: ["lease", "keep-alive", "--once", "$2"] },
  { args: ["lease", "list"] },
];

/** Lease ids in etcdctl's two spellings: hex in text, decimal in JSON. */
function maskLeases(text: string, leases: readonly string[]): string {
  let masked = text;
  leases.forEach((hex, position) => {
    masked = masked.split(hex).join(`<lease${position + 1}>`).split(BigInt(`0x${hex}`).toString()).join(`<lease${position + 1}>`);
  });
  return masked.replace(/remaining\((\d+)s\)/g, (_, seconds: string) => `remaining(${Number(seconds) >= 55 ? "~60" : seconds}s)`).replace(/"ttl":(5[5-9]|60),/g, '"ttl":~60,');
}

describe("etcdctl lease: tetcd prints what etcd prints", { timeout: 90_000 }, () => {
  let pair: Pair | undefined;
  const leases = { etcd: [] as string[], tetcd: [] as string[] };
  before(async () => {
    pair = await Pair.start();
  });
  after(async () => {
    await pair?.stop();
  });

  for (const step of script) {
    test(`etcdctl ${step.args.join(" ")}`, async () => {
      if (pair === undefined) throw new Error("servers did not start");
      if (step.waitMs !== undefined) await new Promise((resolve) => setTimeout(resolve, step.waitMs));
      const outcome = {} as Record<"etcd" | "tetcd", Normalized>;
      for (const side of ["etcd", "tetcd"] as const) {
        const server = pair[side];
        const args = step.args.map((arg) => arg.replace(/\$(\d)/, (_, n: string) => leases[side][Number(n) - 1] ?? "missing"));
        const result = runCtl(server.endpoint, args);
        const normalized = normalize(result, server.endpoint, step.kind ?? "text");
        const granted = /^lease ([0-9a-f]{16}) granted with TTL/.exec(normalized.stdout);
        if (step.args[1] === "grant" && granted !== null) leases[side].push(granted[1]!);
        let stdout = sortAttachedKeys(maskLeases(normalized.stdout, leases[side]));
        if (step.unordered === true) {
          const [first, ...rest] = stdout.split("\n");
          stdout = [first, ...rest.filter((line) => line !== "").sort(), ""].join("\n");
        }
        outcome[side] = { ...normalized, stdout, stderr: maskLeases(normalized.stderr, leases[side]) };
      }
      assert.deepEqual(outcome.tetcd, outcome.etcd);
    });
  }

  test("both servers granted the same number of leases", () => {
    assert.equal(leases.tetcd.length, 2);
    assert.equal(leases.etcd.length, 2);
  });
});
