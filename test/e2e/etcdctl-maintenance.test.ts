// Maintenance through the real etcdctl 3.4: version, endpoint health, endpoint
// status, endpoint hashkv, compaction, alarm list and alarm disarm, on a fresh
// etcd and a fresh tetcd fed the same commands. Allowed to differ: cluster and
// member ids, raft term, the endpoint address, and in endpoint status the DB
// size, DB size in use, raft index and raft applied index, and the time in
// endpoint health. HashKV hashes must be equal: tetcd stores records byte for
// byte as etcd does.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { describeStep, Pair, type Step } from "./harness.js";

function hashOf(stdout: Buffer): { hash: string; compactRevision: string; revision: string } {
  const text = stdout.toString("utf8");
  const hash = /"hash":(\d+)/.exec(text)?.[1];
  const compactRevision = /"compact_revision":(-?\d+)/.exec(text)?.[1];
  const revision = /"revision":(\d+)/.exec(text)?.[1];
  assert.ok(hash !== undefined && compactRevision !== undefined && revision !== undefined, `no hash in ${JSON.stringify(text)}`);
  return { hash, compactRevision, revision };
}

describe("etcdctl maintenance: tetcd prints what etcd prints", { timeout: 60_000 }, () => {
  let pair: Pair | undefined;
  before(async () => {
    pair = await Pair.start();
  });
  after(async () => {
    await pair?.stop();
  });
  function started(): Pair {
    if (pair === undefined) throw new Error("servers did not start");
    return pair;
  }
  const same = (step: Step): void => {
    test(describeStep(step), () => {
      started().expectSame(step);
    });
  };
  /** HashKV on both at the given revision (0: current); the hashes and revisions must be equal. */
  const sameHash = (revision: number, expectedCompactRevision: string): void => {
    test(`endpoint hashkv --rev=${revision}: equal hashes`, () => {
      const { raw } = started().run({ args: ["endpoint", "hashkv", `--rev=${revision}`, "-w", "json"] });
      assert.equal(raw.etcd.status, 0, raw.etcd.stderr);
      assert.equal(raw.tetcd.status, 0, raw.tetcd.stderr);
      const etcd = hashOf(raw.etcd.stdout);
      const tetcd = hashOf(raw.tetcd.stdout);
      assert.equal(etcd.compactRevision, expectedCompactRevision);
      assert.deepEqual(tetcd, etcd, "tetcd's HashKV differs from etcd's");
    });
  };

  same({ args: ["version"] });
  // A fresh store.
  same({ args: ["endpoint", "health"] });
  same({ args: ["endpoint", "health", "-w", "json"] });
  same({ args: ["endpoint", "status"] });
  same({ args: ["endpoint", "status", "-w", "table"] });
  same({ args: ["endpoint", "status", "-w", "json"] });
  same({ args: ["endpoint", "hashkv"] });
  same({ args: ["endpoint", "hashkv", "-w", "json"] });
  sameHash(0, "-1");
  same({ args: ["alarm", "list"] });
  same({ args: ["alarm", "list", "-w", "json"] });
  same({ args: ["alarm", "disarm"] });
  same({ args: ["alarm", "disarm", "-w", "json"] });

  // Some history: revisions 2..10.
  for (const [key, value] of [["a", "1"], ["b", "2"], ["a", "3"], ["c", "4"], ["b", "5"], ["a", "6"], ["d", "7"], ["c", "8"]] as const) {
    same({ args: ["put", key, value] });
  }
  same({ args: ["del", "d"] });
  same({ args: ["endpoint", "status", "-w", "json"] });
  same({ args: ["endpoint", "status", "-w", "table"] });
  same({ args: ["endpoint", "hashkv"] });
  same({ args: ["endpoint", "hashkv", "-w", "table"] });
  same({ args: ["endpoint", "hashkv", "--rev=5", "-w", "json"] });
  sameHash(0, "-1");
  sameHash(4, "-1");
  same({ args: ["endpoint", "hashkv", "--rev=300", "-w", "json"] });

  // compaction: errors first, then a logical and a physical compaction.
  same({ args: ["compaction"] });
  same({ args: ["compaction", "x"] });
  same({ args: ["compaction", "100"] });
  same({ args: ["compaction", "11"] });
  same({ args: ["compaction", "0"] });
  same({ args: ["compaction", "4"] });
  same({ args: ["compaction", "4"] });
  same({ args: ["compaction", "3", "--physical"] });
  same({ args: ["get", "a", "--rev=3"] });
  same({ args: ["get", "a", "--rev=3", "-w", "json"] });
  same({ args: ["get", "a", "--rev=4", "-w", "json"] });
  same({ args: ["get", "a", "--rev=5"] });
  same({ args: ["get", "a", "--rev=11"] });
  same({ args: ["compaction", "7", "--physical"] });
  same({ args: ["get", "a", "--rev=6"] });
  same({ args: ["get", "", "--from-key", "--rev=7", "-w", "json"] });
  sameHash(0, "7");
  sameHash(8, "7");
  same({ args: ["endpoint", "hashkv", "--rev=6", "-w", "json"] });
  same({ args: ["endpoint", "hashkv"] });
  same({ args: ["put", "e", "9"] });
  same({ args: ["compaction", "11", "--physical", "-w", "json"] });
  sameHash(0, "11");
  same({ args: ["endpoint", "status", "-w", "json"] });
  same({ args: ["endpoint", "status"] });
  same({ args: ["get", "", "--from-key", "-w", "json"] });

  // Other output formats, and the formats etcdctl refuses for these commands.
  same({ args: ["endpoint", "status", "-w", "fields"] });
  same({ args: ["endpoint", "health", "-w", "table"] });
  same({ args: ["endpoint", "hashkv", "-w", "fields"] });
  same({ args: ["endpoint", "status", "-w", "protobuf"] });
  same({ args: ["alarm", "list", "-w", "table"] });

  // --cluster: etcdctl lists the members, then asks each at its advertised
  // client URL (http://127.0.0.1:port, dialled as given).
  // Known limitation: for `endpoint status` and `endpoint hashkv` etcdctl 3.4
  // sends the URL itself ("http://127.0.0.1:port") as the HTTP/2 :authority,
  // which Node's HTTP/2 layer (nghttp2) refuses before tetcd sees the call, so
  // those two are compared with host:port endpoints only (above).
  same({ args: ["endpoint", "health", "--cluster"] });

  // The endpoint given as a URL, as users often write it.
  same({ args: ["put", "u", "url"], url: true });
  same({ args: ["get", "u", "-w", "json"], url: true });
  same({ args: ["endpoint", "health"], url: true });
  same({ args: ["alarm", "list"], url: true });
  same({ args: ["compaction", "12"], url: true });
});

// With a quota smaller than any database, the first write raises the NOSPACE
// alarm; etcdctl shows it in alarm list, endpoint health and endpoint status,
// and alarm disarm clears it until the next write raises it again.
describe("etcdctl alarms (NOSPACE): tetcd prints what etcd prints", { timeout: 60_000 }, () => {
  let pair: Pair | undefined;
  before(async () => {
    const quota = { extraArgs: ["--quota-backend-bytes=1"] };
    pair = await Pair.start({ etcd: quota, tetcd: quota });
  });
  after(async () => {
    await pair?.stop();
  });
  const script: Step[] = [
    { args: ["alarm", "list"] },
    { args: ["get", "a"] },
    { args: ["put", "a", "1"] },
    { args: ["put", "b", "2", "-w", "json"] },
    { args: ["alarm", "list"] },
    { args: ["alarm", "list", "-w", "json"] },
    { args: ["endpoint", "health"] },
    { args: ["endpoint", "health", "-w", "json"] },
    { args: ["endpoint", "status"] },
    { args: ["endpoint", "status", "-w", "table"] },
    { args: ["endpoint", "status", "-w", "json"] },
    { args: ["get", "a", "-w", "json"] },
    { args: ["del", "a"] },
    { args: ["txn"], input: "\nput a 1\n\n\n" },
    { args: ["txn"], input: "\ndel a\n\n\n" },
    { args: ["txn"], input: "\nget a\n\n\n" },
    { args: ["txn", "-w", "json"], input: 'value("a") = "x"\n\nput a 2\n\nget a\n\n' },
    { args: ["compaction", "1"] },
    { args: ["alarm", "disarm"] },
    { args: ["alarm", "list"] },
    { args: ["endpoint", "status", "-w", "json"] },
    { args: ["put", "a", "1"] },
    { args: ["alarm", "disarm", "-w", "json"] },
    { args: ["alarm", "list", "-w", "json"] },
  ];
  for (const step of script) {
    test(describeStep(step), () => {
      if (pair === undefined) throw new Error("servers did not start");
      pair.expectSame(step);
    });
  }
});
