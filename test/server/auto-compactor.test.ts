// The auto-compactor under a simulated clock, against etcd 3.4's rules
// (v3compactor's periodic and revision compactors): which revisions it
// compacts at, when, only while resumed (on the leader), and how a failure
// is retried; and the retention flag's forms.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { AutoCompactor, parseCompactionRetention, revisionCheckIntervalMs, type CompactorClock } from "../../src/server/auto-compactor.js";
import { ErrCompacted } from "../../src/server/errors.js";
import { parseGoDurationMs } from "../../src/server/go-values.js";
import { silentLogger } from "../../src/server/logger.js";

/** A clock whose time moves only when the test says, running due timers in order. */
class SimulatedClock implements CompactorClock {
  private now = 0;
  private timers: Array<{ atMs: number; callback: () => void; cancelled: boolean }> = [];

  nowMs(): number {
    return this.now;
  }

  after(delayMs: number, callback: () => void): { cancel(): void } {
    const timer = { atMs: this.now + delayMs, callback, cancelled: false };
    this.timers.push(timer);
    return { cancel: () => (timer.cancelled = true) };
  }

  /** Moves time forward by `ms`, firing timers (and letting their promises settle) as it goes. */
  async advance(ms: number): Promise<void> {
    const end = this.now + ms;
    for (;;) {
      this.timers = this.timers.filter((timer) => !timer.cancelled);
      this.timers.sort((a, b) => a.atMs - b.atMs);
      const next = this.timers[0];
      if (next === undefined || next.atMs > end) break;
      this.timers.shift();
      this.now = next.atMs;
      next.callback();
      for (let turn = 0; turn < 5; turn++) await Promise.resolve();
    }
    this.now = end;
  }
}

/** A store whose revision grows by one every `perMs` milliseconds of simulated time. */
function target(clock: SimulatedClock, perMs: number, fail: (revision: number) => Error | undefined = () => undefined) {
  const compactions: Array<{ atMs: number; revision: number }> = [];
  return {
    compactions,
    revision: () => 1 + Math.floor(clock.nowMs() / perMs),
    compact: async (revision: number) => {
      const error = fail(revision);
      if (error !== undefined) throw error;
      compactions.push({ atMs: clock.nowMs(), revision });
    },
  };
}

describe("auto-compaction", () => {
  test("retention forms: hours as a bare number, Go durations, revisions", () => {
    assert.equal(parseCompactionRetention("periodic", "1", parseGoDurationMs), 3_600_000);
    assert.equal(parseCompactionRetention("periodic", "0", parseGoDurationMs), 0);
    assert.equal(parseCompactionRetention("periodic", "", parseGoDurationMs), 0);
    assert.equal(parseCompactionRetention("periodic", "30m", parseGoDurationMs), 1_800_000);
    assert.equal(parseCompactionRetention("periodic", "1.5s", parseGoDurationMs), 1500);
    assert.equal(parseCompactionRetention("revision", "1000", parseGoDurationMs), 1000);
    assert.throws(() => parseCompactionRetention("periodic", "abc", parseGoDurationMs), /^Error: error parsing CompactionRetention: /);
  });

  test("periodic, 10 s: nothing for the first window, then every window at the revision of one window ago", async () => {
    const clock = new SimulatedClock();
    const store = target(clock, 100); // 10 revisions a second
    const compactor = new AutoCompactor("periodic", 10_000, store, silentLogger, clock);
    compactor.start();
    compactor.resume();
    await clock.advance(9_999);
    assert.deepEqual(store.compactions, []);
    await clock.advance(35_001);
    // Revisions are recorded every second (a tenth of the window), eleven
    // kept: at 10 s the oldest is the one recorded at 0 s; afterwards each
    // compaction takes the oldest kept, recorded 11 s before it.
    assert.deepEqual(store.compactions, [
      { atMs: 10_000, revision: 1 },
      { atMs: 20_000, revision: 91 },
      { atMs: 30_000, revision: 191 },
      { atMs: 40_000, revision: 291 },
    ]);
    compactor.stop();
  });

  test("periodic, 2 h: the first compaction after 2 hours, then every hour, at the oldest of 21 revisions recorded every 6 minutes", async () => {
    const clock = new SimulatedClock();
    const store = target(clock, 1000);
    const compactor = new AutoCompactor("periodic", 7_200_000, store, silentLogger, clock);
    compactor.start();
    compactor.resume();
    await clock.advance(4 * 3_600_000 + 1);
    assert.deepEqual(store.compactions.map((compaction) => [compaction.atMs / 60_000, compaction.revision]), [
      [120, 1],
      [180, 1 + 54 * 60],
      [240, 1 + 114 * 60],
    ]);
    compactor.stop();
  });

  test("paused (a follower) it compacts nothing; resumed (the leader) it catches up at once", async () => {
    const clock = new SimulatedClock();
    const store = target(clock, 100);
    const compactor = new AutoCompactor("periodic", 10_000, store, silentLogger, clock);
    compactor.start();
    await clock.advance(30_000);
    assert.deepEqual(store.compactions, []);
    compactor.resume();
    await clock.advance(1_000);
    assert.deepEqual(store.compactions, [{ atMs: 31_000, revision: 201 }]);
    compactor.stop();
  });

  test("periodic: a failure is retried a tenth of the window later; ErrCompacted counts as done", async () => {
    const clock = new SimulatedClock();
    let failures = 1;
    const store = target(clock, 100, () => (failures-- > 0 ? new Error("etcdserver: request timed out") : undefined));
    const compactor = new AutoCompactor("periodic", 10_000, store, silentLogger, clock);
    compactor.start();
    compactor.resume();
    await clock.advance(11_500);
    assert.deepEqual(store.compactions, [{ atMs: 11_000, revision: 1 }]);
    compactor.stop();
    const compacted = target(clock, 100, () => ErrCompacted);
    const second = new AutoCompactor("periodic", 10_000, compacted, silentLogger, clock);
    second.start();
    second.resume();
    await clock.advance(10_500);
    assert.deepEqual(compacted.compactions, []);
    second.stop();
  });

  test("revision: every 5 minutes at the current revision minus the retention, never twice at one revision", async () => {
    const clock = new SimulatedClock();
    let revision = 1;
    const compactions: number[] = [];
    const compactor = new AutoCompactor("revision", 1000, { revision: () => revision, compact: async (at) => void compactions.push(at) }, silentLogger, clock);
    compactor.start();
    compactor.resume();
    revision = 800;
    await clock.advance(revisionCheckIntervalMs);
    assert.deepEqual(compactions, [], "below the retention: nothing to compact");
    revision = 5000;
    await clock.advance(revisionCheckIntervalMs);
    await clock.advance(revisionCheckIntervalMs);
    revision = 5100;
    await clock.advance(revisionCheckIntervalMs);
    assert.deepEqual(compactions, [4000, 4100]);
    compactor.stop();
  });
});
