import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startEtcd, startTetcd, type ServerProcess } from "../support/processes.js";
import { Random } from "../support/random.js";
import { V2Client, type V2Call } from "./v2-client.js";

/**
 * The v2 keys API against etcd 3.4 `--enable-v2`: seeded random requests
 * (sets, creates, updates, compare-and-swaps, deletes, in-order keys, dirs,
 * hidden keys, TTLs, listings, waitIndex watches and malformed forms) sent to
 * both, every status, body and header compared. Store indexes are compared
 * relative to each server's index before the first request (etcd's store
 * starts with its membership records in it); raft indexes and terms must be
 * present; TTLs and expirations depend on the clock and are masked.
 */
const keys = ["/a", "/a/b", "/a/b/c", "/d", "/d/e", "/_hidden", "/d/_h", "/q", "/"];
const values = ["alpha", "beta", "gamma", ""];
const requestsPerSeed = 120;

function randomCall(random: Random, step: number): V2Call {
  const key = random.pick(keys);
  const path = `/v2/keys${key}`;
  const index = { relative: random.int(0, step + 1) };
  const form: Record<string, string | { relative: number }> = {};
  const query: Record<string, string | { relative: number }> = {};
  switch (random.int(0, 13)) {
    case 0:
    case 1:
      return { method: "PUT", path, form: { value: random.pick(values) } };
    case 2:
      return { method: "PUT", path, form: { dir: "true" } };
    case 3:
      return { method: "PUT", path, query: { prevExist: random.pick(["true", "false"]) }, form: { value: random.pick(values) } };
    case 4:
      if (random.chance(0.5)) query["prevValue"] = random.pick(values.slice(0, 3));
      else query["prevIndex"] = index;
      return { method: "PUT", path, query, form: { value: random.pick(values) } };
    case 5:
      form["ttl"] = String(random.int(300, 900));
      if (random.chance(0.3)) form["refresh"] = "true";
      else form["value"] = random.pick(values);
      return { method: "PUT", path, form };
    case 6:
      return { method: "POST", path, form: { value: random.pick(values) } };
    case 7:
      if (random.chance(0.5)) query["dir"] = "true";
      if (random.chance(0.4)) query["recursive"] = "true";
      return { method: "DELETE", path, query };
    case 8:
      if (random.chance(0.5)) query["prevValue"] = random.pick(values.slice(0, 3));
      else query["prevIndex"] = index;
      return { method: "DELETE", path, query };
    case 9:
    case 10:
      if (random.chance(0.5)) query["recursive"] = "true";
      if (random.chance(0.5)) query["sorted"] = "true";
      if (random.chance(0.2)) query["quorum"] = "true";
      return { method: "GET", path, query };
    case 11:
      // A watch from an index in the past answers at once when an event matches; one still waiting is cut off.
      return { method: "GET", path, query: { wait: "true", waitIndex: { relative: random.int(1, step + 1) }, recursive: random.pick(["true", "false"]) }, waitMs: 300 };
    case 12:
      return { method: random.pick(["PATCH", "HEAD"]), path };
    default: {
      const bad: Array<Record<string, string>> = [{ ttl: "abc" }, { prevIndex: "x" }, { recursive: "maybe" }, { refresh: "true" }, { prevValue: "" }, { wait: "true" }, { prevExist: "perhaps" }];
      return { method: "PUT", path, query: random.pick(bad), form: { value: "v" } };
    }
  }
}

describe("the v2 keys API against etcd 3.4 --enable-v2", { timeout: 240_000 }, () => {
  let etcd: ServerProcess;
  let tetcd: ServerProcess;

  before(async () => {
    [etcd, tetcd] = await Promise.all([startEtcd({ extraArgs: ["--enable-v2"] }), startTetcd({ extraArgs: ["--enable-v2"] })]);
  });

  after(async () => {
    await Promise.all([etcd?.stop(), tetcd?.stop()]);
  });

  for (const seed of [1, 2, 3]) {
    test(`seed ${seed}: ${requestsPerSeed} random requests get the same answers`, async () => {
      const reference = new V2Client(etcd.endpoint);
      const ours = new V2Client(tetcd.endpoint);
      await Promise.all([reference.start(), ours.start()]);
      const random = new Random(seed);
      // Each seed works under a directory of its own, so that seeds do not see each other's keys.
      const prefix = `/s${seed}`;
      for (let step = 0; step < requestsPerSeed; step++) {
        const call = randomCall(random, step);
        call.path = call.path.replace("/v2/keys", `/v2/keys${prefix}`);
        const [expected, actual] = [await reference.call(call), await ours.call(call)];
        assert.deepEqual(actual, expected, `seed ${seed} step ${step}: ${call.method} ${call.path} ${JSON.stringify(call.query ?? {})} ${JSON.stringify(call.form ?? {})}`);
      }
    });
  }
});
