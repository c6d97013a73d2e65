/**
 * What the leader knows of one follower: how far its log matches (match), what
 * to send next (next), and the flow-control state:
 *
 * - probe: one MsgApp per heartbeat interval until the follower's position is found;
 * - replicate: stream optimistically, bounded by the inflight window;
 * - snapshot: a snapshot is on its way; send nothing until it is reported.
 */
import { Inflights } from "./inflights.js";
import { assert } from "./errors.js";

export const ProgressState = { Probe: "probe", Replicate: "replicate", Snapshot: "snapshot" } as const;
export type ProgressState = (typeof ProgressState)[keyof typeof ProgressState];

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = ProgressState.Probe;
  /** Index of the snapshot being sent while in snapshot state. */
  pendingSnapshot = 0;
  /** Heard from in the current election timeout (for check-quorum). */
  recentActive = false;
  /** In probe state: a MsgApp was sent since the last heartbeat response. */
  messageAppFlowPaused = false;
  readonly inflights: Inflights;
  isLearner: boolean;

  constructor(next: number, maxInflightMessages: number, maxInflightBytes: number, isLearner: boolean) {
    this.next = next;
    this.inflights = new Inflights(maxInflightMessages, maxInflightBytes);
    this.isLearner = isLearner;
  }

  private resetState(state: ProgressState): void {
    this.messageAppFlowPaused = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === ProgressState.Snapshot) {
      const pending = this.pendingSnapshot;
      this.resetState(ProgressState.Probe);
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState(ProgressState.Probe);
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState(ProgressState.Replicate);
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState(ProgressState.Snapshot);
    this.pendingSnapshot = snapshotIndex;
  }

  /** Records a MsgApp of `entries` entries ending at lastIndex being sent. */
  sentEntries(entryCount: number, bytes: number): void {
    switch (this.state) {
      case ProgressState.Replicate:
        if (entryCount > 0) {
          this.next += entryCount;
          this.inflights.add(this.next - 1, bytes);
        }
        this.messageAppFlowPaused = this.inflights.full();
        break;
      case ProgressState.Probe:
        if (entryCount > 0) this.messageAppFlowPaused = true;
        break;
      default:
        throw new Error(`sending append in unhandled state ${this.state}`);
    }
  }

  /** An acknowledgement up to index arrived; returns whether it was new. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.messageAppFlowPaused = false;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /**
   * A rejection of MsgApp at `rejected`, with the follower's hint of where its log
   * might match. Returns false if the rejection is stale.
   */
  maybeDecreaseTo(rejected: number, matchHint: number): boolean {
    if (this.state === ProgressState.Replicate) {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    assert(this.next >= 1, "progress: next below 1");
    this.messageAppFlowPaused = false;
    return true;
  }

  /** Whether sending entries must wait (probe already sent, window full, snapshot pending). */
  isPaused(): boolean {
    switch (this.state) {
      case ProgressState.Probe:
      case ProgressState.Replicate:
        return this.messageAppFlowPaused;
      case ProgressState.Snapshot:
        return true;
    }
  }

  describe(): string {
    return `${this.state} match=${this.match} next=${this.next}${this.isLearner ? " learner" : ""}${this.isPaused() ? " paused" : ""}${this.pendingSnapshot > 0 ? ` pendingSnapshot=${this.pendingSnapshot}` : ""} inflight=${this.inflights.count()}`;
  }
}
