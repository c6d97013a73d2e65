import { ErrCompacted } from "./errors.js";
import type { Logger } from "./logger.js";

/** The timers the compactor runs on: real ones in a member, simulated ones in tests. */
export interface CompactorClock {
  nowMs(): number;
  after(delayMs: number, callback: () => void): { cancel(): void };
}

export const realCompactorClock: CompactorClock = {
  nowMs: () => performance.now(),
  after(delayMs, callback) {
    const timer = setTimeout(callback, delayMs);
    timer.unref();
    return { cancel: () => clearTimeout(timer) };
  },
};

/** What the compactor needs of a member: its current revision, and a compaction through the log. */
export interface Compactable {
  revision(): number;
  compact(revision: number): Promise<unknown>;
}

export type AutoCompactionMode = "periodic" | "revision";

const hourMs = 3_600_000;
/** etcd 3.4 looks at the revision every 5 minutes in revision mode. */
export const revisionCheckIntervalMs = 5 * 60_000;
/** Periodic mode records the revision this many times per window (of at most an hour). */
const periodicRetryDivisor = 10;

/**
 * etcd 3.4's --auto-compaction-retention: in revision mode a count of
 * revisions; in periodic mode a whole number of hours, or a Go duration.
 * Returns milliseconds (periodic) or revisions; 0 turns auto-compaction off.
 */
export function parseCompactionRetention(mode: AutoCompactionMode, retention: string, parseDurationMs: (text: string) => number): number {
  const text = retention === "" ? "0" : retention;
  if (/^[+-]?\d+$/.test(text) && Number(text) >= 0) return mode === "revision" ? Number(text) : Number(text) * hourMs;
  try {
    return parseDurationMs(text);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    // Go's time package names itself in its errors.
    throw new Error(`error parsing CompactionRetention: ${message.startsWith("time: ") ? message : `time: ${message}`}`);
  }
}

/** A compaction at or below the last one: as good as done. */
function isCompacted(error: unknown): boolean {
  return error instanceof Error && error.message === ErrCompacted.message;
}

function formatGoDuration(ms: number): string {
  if (ms % hourMs === 0) return `${ms / hourMs}h0m0s`;
  if (ms % 60_000 === 0) return `${Math.floor(ms / hourMs) > 0 ? `${Math.floor(ms / hourMs)}h` : ""}${(ms % hourMs) / 60_000}m0s`;
  return `${ms / 1000}s`;
}

/**
 * etcd 3.4's auto-compactor. Every member runs one; only the leader's is
 * resumed, and it compacts through the log like a client's Compact.
 *
 * Periodic: the revision is recorded every tenth of the window (the window
 * capped at an hour for this step); after a first whole window, the
 * compactor compacts at the revision recorded one window ago, then again
 * every window (at most every hour). Revision: every 5 minutes, compact at
 * the current revision minus the retention, unless that is where it
 * compacted last.
 */
export class AutoCompactor {
  private paused = true;
  private stopped = false;
  private timer: { cancel(): void } | undefined;
  private readonly revisions: number[] = [];
  private lastSuccessMs = 0;
  private baseIntervalMs = 0;
  private previousRevision = 0;

  constructor(
    private readonly mode: AutoCompactionMode,
    /** Milliseconds (periodic) or revisions (revision). */
    private readonly retention: number,
    private readonly target: Compactable,
    private readonly logger: Logger,
    private readonly clock: CompactorClock = realCompactorClock,
  ) {
    if (retention <= 0) throw new Error("auto-compaction retention must be positive");
  }

  start(): void {
    if (this.mode === "periodic") {
      this.lastSuccessMs = this.clock.nowMs();
      this.baseIntervalMs = this.retention;
      this.logger.info("auto compaction", { "compact-period": formatGoDuration(this.retention), mode: "periodic" }, `etcdserver: enabled auto-compaction, mode periodic, retention ${formatGoDuration(this.retention)}`);
      this.periodicStep();
    } else {
      this.logger.info("auto compaction", { "revision-retention": this.retention, mode: "revision" }, `etcdserver: enabled auto-compaction, mode revision, retention ${this.retention}`);
      this.schedule(revisionCheckIntervalMs, () => void this.revisionStep());
    }
  }

  /** On the leader only. */
  resume(): void {
    this.paused = false;
  }

  pause(): void {
    this.paused = true;
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }

  private schedule(delayMs: number, step: () => void): void {
    if (this.stopped) return;
    this.timer = this.clock.after(delayMs, step);
  }

  private get retryIntervalMs(): number {
    return Math.min(this.retention, hourMs) / periodicRetryDivisor;
  }

  /** Records the revision, then after a retry interval compacts if a window has passed since the last success. */
  private periodicStep(): void {
    this.revisions.push(this.target.revision());
    const kept = Math.floor(this.retention / this.retryIntervalMs) + 1;
    if (this.revisions.length > kept) this.revisions.shift();
    this.schedule(this.retryIntervalMs, () => void this.periodicCompact());
  }

  private async periodicCompact(): Promise<void> {
    if (this.paused || this.clock.nowMs() - this.lastSuccessMs < this.baseIntervalMs) return this.periodicStep();
    // After the first whole window, compact every window, or every hour for longer ones.
    if (this.baseIntervalMs === this.retention) this.baseIntervalMs = Math.min(this.retention, hourMs);
    const revision = this.revisions[0]!;
    const period = formatGoDuration(this.retention);
    this.logger.info("starting auto periodic compaction", { revision, "compact-period": period }, `compactor: Starting auto-compaction at revision ${revision} (retention: ${period})`);
    const startedMs = this.clock.nowMs();
    try {
      await this.target.compact(revision);
      this.lastSuccessMs = this.clock.nowMs();
      this.logger.info("completed auto periodic compaction", { revision, "compact-period": period, took: `${Math.round(this.clock.nowMs() - startedMs)}ms` }, `compactor: Finished auto-compaction at revision ${revision}`);
    } catch (error) {
      if (!isCompacted(error)) this.logFailure("failed auto periodic compaction", revision, error, this.retryIntervalMs);
      else {
        // Already compacted there: done, as etcd counts it.
        this.lastSuccessMs = this.clock.nowMs();
        this.logger.info("completed auto periodic compaction", { revision, "compact-period": period, took: `${Math.round(this.clock.nowMs() - startedMs)}ms` }, `compactor: Finished auto-compaction at revision ${revision}`);
      }
    }
    this.periodicStep();
  }

  private async revisionStep(): Promise<void> {
    const revision = this.target.revision() - this.retention;
    if (!this.paused && revision > 0 && revision !== this.previousRevision) {
      this.logger.info("starting auto revision compaction", { revision, "revision-compaction-retention": this.retention }, `compactor: Starting auto-compaction at revision ${revision} (retention: ${this.retention} revisions)`);
      const startedMs = this.clock.nowMs();
      try {
        await this.target.compact(revision);
        this.previousRevision = revision;
        this.logger.info("completed auto revision compaction", { revision, "revision-compaction-retention": this.retention, took: `${Math.round(this.clock.nowMs() - startedMs)}ms` }, `compactor: Finished auto-compaction at revision ${revision}`);
      } catch (error) {
        if (isCompacted(error)) {
          this.previousRevision = revision;
          this.logger.info("completed auto revision compaction", { revision, "revision-compaction-retention": this.retention, took: `${Math.round(this.clock.nowMs() - startedMs)}ms` }, `compactor: Finished auto-compaction at revision ${revision}`);
        } else this.logFailure("failed auto revision compaction", revision, error, revisionCheckIntervalMs);
      }
    }
    this.schedule(revisionCheckIntervalMs, () => void this.revisionStep());
  }

  private logFailure(message: string, revision: number, error: unknown, retryMs: number): void {
    const text = error instanceof Error ? error.message : String(error);
    this.logger.warn(message, { revision, "retry-interval": formatGoDuration(retryMs), error: text }, `compactor: Failed auto-compaction at revision ${revision} (${text})\ncompactor: Retry after ${formatGoDuration(retryMs)}`);
  }
}
