// The linearizability checker (test/support/linearizability.ts) on histories
// whose verdict is known: concurrent histories that are linearizable only in
// some order, writes of unknown outcome that did or did not happen, and
// histories that no order explains (stale reads, lost writes, revisions going
// backwards, reads that disagree on the order of two writes, a write of
// unknown outcome seen and then unseen). Large random histories from a
// simulated linearizable store are accepted quickly, and rejected once broken.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { checkHistory, type CheckOptions, type CheckResult, type Operation, type StoreState } from "../support/linearizability.js";
import { Random } from "../support/random.js";

// Builders: times in ms; `revision` "unknown" for a call that failed or timed out.
function put(client: number, key: string, value: string, callMs: number, returnMs: number, revision: number | "unknown"): Operation {
  const outcome = revision === "unknown" ? { status: "unknown" as const, error: "deadline exceeded" } : { status: "ok" as const, result: { revision } };
  return { type: "put", client, key, value, callMs, returnMs, outcome };
}

/** A get that saw `value` (undefined: absent) at `modRevision`, with header revision `revision`. */
function get(client: number, key: string, callMs: number, returnMs: number, value: string | undefined, modRevision: number, revision: number): Operation {
  return { type: "get", client, key, callMs, returnMs, outcome: { status: "ok", result: { value, modRevision, revision } } };
}

function del(client: number, key: string, callMs: number, returnMs: number, result: { deleted: number; revision: number } | "unknown"): Operation {
  const outcome = result === "unknown" ? { status: "unknown" as const, error: "deadline exceeded" } : { status: "ok" as const, result };
  return { type: "delete", client, key, callMs, returnMs, outcome };
}

function assertLinearizable(history: Operation[], options?: CheckOptions): CheckResult & { verdict: "linearizable" } {
  const result = checkHistory(history, options);
  assert.equal(result.verdict, "linearizable", result.verdict === "linearizable" ? "" : result.explanation);
  return result as CheckResult & { verdict: "linearizable" };
}

/** Rejected by the whole checker and by its search alone (without the checks that need no search). */
function assertNotLinearizable(history: Operation[], options?: CheckOptions): { checked: RejectedResult; searched: RejectedResult } {
  const checked = checkHistory(history, options);
  assert.equal(checked.verdict, "not linearizable", `expected a rejection, got ${checked.verdict}`);
  const searched = checkHistory(history, { ...options, searchOnly: true });
  assert.equal(searched.verdict, "not linearizable", `expected the search to reject it, got ${searched.verdict}`);
  return { checked: checked as RejectedResult, searched: searched as RejectedResult };
}

type RejectedResult = CheckResult & { verdict: "not linearizable" };

describe("linearizable histories are accepted", () => {
  test("an empty history, and sequential puts and gets", () => {
    assertLinearizable([]);
    const result = assertLinearizable([
      get(0, "k", 0, 1, undefined, 0, 1),
      put(0, "k", "a", 2, 3, 2),
      get(1, "k", 4, 5, "a", 2, 2),
      put(1, "j", "b", 6, 7, 3),
      get(0, "k", 8, 9, "a", 2, 3),
    ]);
    assert.deepEqual(result.order, [0, 1, 2, 3, 4]);
  });

  test("overlapping puts are ordered by the revisions they answered, not by their calls", () => {
    const result = assertLinearizable([
      put(0, "k", "a", 0, 10, 3),
      put(1, "k", "b", 1, 9, 2),
      get(2, "k", 11, 12, "a", 3, 3),
    ]);
    assert.deepEqual(result.order, [1, 0, 2]);
  });

  test("a get overlapping a put may see the value before or after it", () => {
    for (const seen of [get(1, "k", 1, 5, undefined, 0, 1), get(1, "k", 1, 5, "a", 2, 2)]) {
      assertLinearizable([put(0, "k", "a", 0, 10, 2), seen]);
    }
  });

  test("a get that returned before a put was called sees the old value, even at the last moment", () => {
    assertLinearizable([get(1, "k", 0, 5, undefined, 0, 1), put(0, "k", "a", 5, 10, 2), get(1, "k", 10, 11, "a", 2, 2)]);
  });

  test("a put of unknown outcome that happened, seen later, fills the revision no acknowledged put owns", () => {
    assertLinearizable([
      put(0, "k", "lost-reply", 0, 5, "unknown"),
      put(1, "k", "b", 10, 11, 3),
      get(2, "k", 12, 13, "b", 3, 3),
      put(1, "j", "c", 14, 15, 4),
    ]);
  });

  test("a put of unknown outcome may take effect long after its call failed", () => {
    assertLinearizable([
      put(0, "k", "late", 0, 5, "unknown"),
      put(1, "k", "b", 10, 11, 2),
      get(2, "k", 12, 13, "b", 2, 2),
      get(2, "k", 20, 21, "late", 3, 3),
    ]);
  });

  test("a put of unknown outcome that never happened is left out", () => {
    const result = assertLinearizable([
      put(0, "k", "never", 0, 5, "unknown"),
      put(1, "k", "b", 10, 11, 2),
      get(2, "k", 12, 13, "b", 2, 2),
    ]);
    assert.deepEqual(result.order, [1, 2]);
  });

  test("a get of unknown outcome constrains nothing", () => {
    const failedGet: Operation = { type: "get", client: 1, key: "k", callMs: 0, returnMs: 9, outcome: { status: "unknown", error: "unavailable" } };
    assertLinearizable([put(0, "k", "a", 0, 1, 2), failedGet]);
  });

  test("several puts of unknown outcome, some seen, fill the gaps between acknowledged revisions", () => {
    assertLinearizable([
      put(0, "k", "u0", 0, 50, "unknown"),
      put(1, "k", "u1", 0, 50, "unknown"),
      put(2, "j", "u2", 0, 50, "unknown"),
      put(3, "j", "u3", 0, 50, "unknown"),
      put(4, "k", "a", 1, 60, 3),
      get(5, "j", 61, 62, "u3", 2, 4),
      get(5, "k", 63, 64, "u1", 4, 4),
      put(4, "k", "b", 65, 66, 6),
      get(5, "j", 67, 68, "u2", 5, 6),
    ]);
  });

  test("deletes: of a present key raise the revision, of an absent key do not; a delete of unknown outcome may happen", () => {
    assertLinearizable([
      put(0, "k", "a", 0, 1, 2),
      del(0, "k", 2, 3, { deleted: 1, revision: 3 }),
      get(1, "k", 4, 5, undefined, 0, 3),
      del(1, "k", 6, 7, { deleted: 0, revision: 3 }),
      put(0, "k", "b", 8, 9, 4),
      del(0, "k", 10, 11, "unknown"),
      get(1, "k", 12, 13, undefined, 0, 5),
    ]);
  });

  test("a store that already holds keys", () => {
    const initial: StoreState = { revision: 7, keys: new Map([["k", { value: "old", modRevision: 5 }]]) };
    assertLinearizable([get(0, "k", 0, 1, "old", 5, 7), put(0, "k", "new", 2, 3, 8)], { initial });
  });
});

describe("histories no order explains are rejected", () => {
  test("a stale read after a completed write", () => {
    const { checked, searched } = assertNotLinearizable([
      put(0, "k", "a", 0, 1, 2),
      put(0, "k", "b", 2, 3, 3),
      get(1, "k", 4, 5, "a", 2, 2),
    ]);
    assert.match(checked.explanation, /revisions against real time: this returned at revision 3\n  #1 client 0 put k="b" → revision 3/);
    // The search cannot place the put while a read still needs the revision before it, and that read was called only after the put returned.
    assert.equal(searched.stuck, 1);
    assert.match(searched.explanation, /because 1 acknowledged read\(s\) still need revision 2/);
  });

  test("a stale read at the current header revision", () => {
    const { checked, searched } = assertNotLinearizable([
      put(0, "k", "a", 0, 1, 2),
      put(0, "k", "b", 2, 3, 3),
      get(1, "k", 4, 5, "a", 2, 3),
    ]);
    assert.match(checked.explanation, /a read that missed a write to its key before its header revision/);
    assert.equal(searched.stuck, 2);
    assert.match(searched.explanation, /the model holds k="b"@3 at revision 3/);
  });

  test("a read that sees a value never written", () => {
    assertNotLinearizable([put(0, "k", "a", 0, 1, 2), get(1, "k", 2, 3, "phantom", 2, 2)]);
  });

  test("a read of an absent key that was written before it began", () => {
    assertNotLinearizable([put(0, "k", "a", 0, 1, 2), get(1, "k", 2, 3, undefined, 0, 2)]);
  });

  test("a lost acknowledged write: a later read at a later revision sees the value it overwrote", () => {
    assertNotLinearizable([
      put(0, "k", "a", 0, 1, 2),
      put(0, "k", "b", 2, 3, 3),
      put(0, "j", "c", 4, 5, 4),
      get(1, "k", 6, 7, "a", 2, 4),
    ]);
  });

  test("the revision going backwards between sequential reads", () => {
    assertNotLinearizable([
      put(0, "k", "a", 0, 1, 2),
      put(0, "j", "b", 2, 3, 3),
      get(1, "k", 4, 5, "a", 2, 3),
      get(1, "k", 6, 7, "a", 2, 2),
    ]);
  });

  test("the revision going backwards between sequential puts", () => {
    assertNotLinearizable([put(0, "k", "a", 0, 1, 3), put(1, "k", "b", 2, 3, 2), put(0, "k", "c", 4, 5, 4)]);
  });

  test("a read whose header revision lags a put that returned before the read began", () => {
    assertNotLinearizable([put(0, "k", "a", 0, 1, 2), put(0, "j", "b", 2, 3, 3), get(1, "k", 4, 5, "a", 2, 2)]);
  });

  test("two acknowledged puts that answered one revision", () => {
    assertNotLinearizable([put(0, "k", "a", 0, 10, 2), put(1, "k", "b", 0, 10, 2)]);
  });

  test("a gap in the revisions that no write of unknown outcome could fill", () => {
    assertNotLinearizable([put(0, "k", "a", 0, 1, 2), put(0, "k", "b", 2, 3, 4)]);
  });

  test("a put of unknown outcome cannot take effect before its call", () => {
    const history = [put(0, "k", "a", 0, 1, 2), put(0, "k", "b", 2, 3, 4), put(1, "j", "u", 5, 6, "unknown")];
    assertNotLinearizable(history);
    // The same put called in time fills the gap.
    assertLinearizable([put(0, "k", "a", 0, 1, 2), put(0, "k", "b", 2, 3, 4), put(1, "j", "u", 1.5, 6, "unknown")]);
  });

  test("two sequential readers that see two failed puts in opposite orders", () => {
    assertNotLinearizable([
      put(0, "k", "x", 0, 100, "unknown"),
      put(1, "k", "y", 0, 100, "unknown"),
      get(2, "k", 10, 11, "x", 2, 2),
      get(2, "k", 12, 13, "y", 3, 3),
      get(3, "k", 10, 11, "y", 2, 2),
      get(3, "k", 12, 13, "x", 3, 3),
    ]);
  });

  test("two readers that see two acknowledged puts in opposite orders", () => {
    // The puts overlap each other and both readers; each reader's two reads are sequential.
    assertNotLinearizable([
      put(0, "k", "x", 0, 100, 2),
      put(1, "j", "y", 0, 100, 3),
      get(2, "k", 10, 11, "x", 2, 2),
      get(2, "j", 12, 13, undefined, 0, 2),
      get(3, "j", 10, 11, "y", 3, 3),
      get(3, "k", 12, 13, undefined, 0, 3),
    ]);
  });

  test("a failed put seen and then unseen", () => {
    assertNotLinearizable([
      put(0, "k", "a", 0, 1, 2),
      put(1, "k", "maybe", 2, 3, "unknown"),
      get(2, "k", 4, 5, "maybe", 3, 3),
      get(2, "k", 6, 7, "a", 2, 3),
    ]);
  });

  test("a failed put seen at two mod revisions (it can happen only once)", () => {
    assertNotLinearizable([
      put(1, "k", "maybe", 0, 3, "unknown"),
      get(2, "k", 4, 5, "maybe", 2, 2),
      put(0, "k", "b", 6, 7, 3),
      get(2, "k", 8, 9, "maybe", 4, 4),
    ]);
  });

  test("a read after a delete still sees the key", () => {
    assertNotLinearizable([put(0, "k", "a", 0, 1, 2), del(0, "k", 2, 3, { deleted: 1, revision: 3 }), get(1, "k", 4, 5, "a", 2, 3)]);
  });

  test("a delete that claims to have deleted an absent key", () => {
    assertNotLinearizable([get(0, "k", 0, 1, undefined, 0, 1), del(0, "k", 2, 3, { deleted: 1, revision: 2 })]);
  });

  test("an inconclusive verdict when the step budget runs out", () => {
    const history = [put(0, "k", "a", 0, 1, 2), put(0, "k", "b", 2, 3, 3), get(1, "k", 4, 5, "b", 3, 3)];
    assert.equal(checkHistory(history, { placementsMax: 2 }).verdict, "inconclusive");
    assert.equal(checkHistory(history).verdict, "linearizable");
  });
});

/**
 * A history from a simulated linearizable store: `clients` clients, each
 * issuing `perClient` operations one after another on `keyCount` keys; every
 * operation takes effect at a random point inside its interval, except that a
 * write whose reply is lost (`unknownRate`) takes effect at a random later
 * point or never.
 */
function simulate(seed: number, clients: number, perClient: number, keyCount: number, unknownRate: number): Operation[] {
  const random = new Random(seed);
  const history: Operation[] = [];
  const effects: { atMs: number; index: number; acknowledged: boolean; happens: boolean }[] = [];
  for (let client = 0; client < clients; client++) {
    let clockMs = random.next() * 5;
    for (let n = 0; n < perClient; n++) {
      const callMs = clockMs + random.next() * 3;
      const returnMs = callMs + 0.5 + random.next() * 20;
      const key = `k${random.int(0, keyCount - 1)}`;
      const unknown = random.chance(unknownRate);
      const kind = random.next();
      const pending = { status: "unknown" as const, error: "simulated" };
      const operation: Operation =
        kind < 0.45 ? { type: "get", client, key, callMs, returnMs, outcome: pending }
        : kind < 0.9 ? { type: "put", client, key, value: `c${client}-${n}`, callMs, returnMs, outcome: pending }
        : { type: "delete", client, key, callMs, returnMs, outcome: pending };
      const atMs = unknown ? callMs + random.next() * 60 : callMs + random.next() * (returnMs - callMs);
      effects.push({ atMs, index: history.length, acknowledged: !unknown, happens: !unknown || random.chance(0.5) });
      history.push(operation);
      clockMs = returnMs;
    }
  }
  effects.sort((a, b) => a.atMs - b.atMs);
  const store = new Map<string, { value: string; modRevision: number }>();
  let revision = 1;
  for (const effect of effects) {
    const operation = history[effect.index]!;
    if (!effect.happens) continue;
    const acknowledged = effect.acknowledged;
    if (operation.type === "put") {
      store.set(operation.key, { value: operation.value, modRevision: ++revision });
      if (acknowledged) operation.outcome = { status: "ok", result: { revision } };
    } else if (operation.type === "delete") {
      const deleted = store.delete(operation.key) ? 1 : 0;
      revision += deleted;
      if (acknowledged) operation.outcome = { status: "ok", result: { deleted, revision } };
    } else {
      const entry = store.get(operation.key);
      if (acknowledged) operation.outcome = { status: "ok", result: { value: entry?.value, modRevision: entry?.modRevision ?? 0, revision } };
    }
  }
  return history;
}

describe("large simulated histories", () => {
  // 2,000 operations from 16 clients on 4 keys; 5% (or 15%) of them of unknown outcome.
  const seeds = [1, 2, 3];

  test("are accepted, with about one placement per operation", () => {
    for (const [seed, unknownRate] of [...seeds.map((seed) => [seed, 0.05]), [4, 0.15]] as const) {
      const history = simulate(seed, 16, 125, 4, unknownRate);
      assert.ok(history.some((operation) => operation.outcome.status === "unknown"));
      const startedMs = performance.now();
      const result = assertLinearizable(history);
      const elapsedMs = performance.now() - startedMs;
      assert.ok(elapsedMs < 5_000 && result.placements < 2 * history.length, `seed ${seed}: ${elapsedMs.toFixed(0)} ms, ${result.placements} placements`);
    }
  });

  test("are rejected once a read is made stale", () => {
    for (const seed of seeds) {
      const history = simulate(seed, 16, 125, 4, 0.05);
      // A read that saw a key's value, made to see the value the key held before (one that was overwritten).
      const index = history.findIndex((operation, position) => {
        if (operation.type !== "get" || operation.outcome.status !== "ok" || position < 500) return false;
        return staleVersionOf(history, operation.key, operation.outcome.result.modRevision) !== undefined;
      });
      assert.ok(index >= 0, `seed ${seed}: no read to make stale`);
      const read = history[index]!;
      assert.ok(read.type === "get" && read.outcome.status === "ok");
      const earlier = staleVersionOf(history, read.key, read.outcome.result.modRevision)!;
      const stale: Operation = { ...read, outcome: { status: "ok", result: { ...read.outcome.result, value: earlier.value, modRevision: earlier.modRevision } } };
      assertNotLinearizable(history.map((operation, position) => (position === index ? stale : operation)));
    }
  });

  test("are rejected once two sequential acknowledged puts swap revisions", () => {
    // With few writes of unknown outcome, so that the search alone settles it quickly too.
    for (const seed of seeds) {
      const history = simulate(seed, 16, 125, 4, 0.01);
      const puts = history.map((operation, index) => ({ operation, index })).filter(({ operation }) => operation.type === "put" && operation.outcome.status === "ok");
      const first = puts[puts.length >> 1]!;
      const second = puts.find(({ operation }) => operation.callMs > first.operation.returnMs + 50)!;
      assert.ok(second !== undefined);
      const revisionOf = (operation: Operation) => (operation.outcome.status === "ok" && operation.type === "put" ? operation.outcome.result.revision : -1);
      const swapped = history.slice();
      swapped[first.index] = { ...(first.operation as Operation & { type: "put" }), outcome: { status: "ok", result: { revision: revisionOf(second.operation) } } };
      swapped[second.index] = { ...(second.operation as Operation & { type: "put" }), outcome: { status: "ok", result: { revision: revisionOf(first.operation) } } };
      const { checked } = assertNotLinearizable(swapped);
      assert.match(checked.explanation, /revisions against real time/);
    }
  });
});

/**
 * For a read that saw the value an acknowledged put wrote at `modRevision`,
 * the value of the latest acknowledged put to `key` before it (which no
 * linearization lets a read at that revision see).
 */
function staleVersionOf(history: readonly Operation[], key: string, modRevision: number): { value: string; modRevision: number } | undefined {
  const acknowledgedAt = (operation: Operation) => operation.type === "put" && operation.key === key && operation.outcome.status === "ok" && operation.outcome.result.revision === modRevision;
  if (!history.some(acknowledgedAt)) return undefined;
  let best: { value: string; modRevision: number } | undefined;
  for (const operation of history) {
    if (operation.type !== "put" || operation.key !== key || operation.outcome.status !== "ok") continue;
    const revision = operation.outcome.result.revision;
    if (revision < modRevision && (best === undefined || revision > best.modRevision)) best = { value: operation.value, modRevision: revision };
  }
  return best;
}
