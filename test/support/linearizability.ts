/**
 * A linearizability checker for histories of etcd KV operations, in the manner
 * of Wing & Gong as refined by Lowe and by Porcupine (github.com/anishathalye/porcupine).
 *
 * A history is a list of operations, each with the client's call and return
 * times (a monotonic clock, in ms) and an outcome: `ok` with what the server
 * answered, or `unknown` when the call failed or timed out. An unknown
 * operation may have taken effect at any single point after its call, or never:
 * its return time is taken as +infinity and the search may leave it out.
 *
 * The model (kv-model.ts) is the store itself: key → {value, modRevision},
 * plus the store's revision. A put raises the revision by one, and an
 * acknowledged put must have answered exactly that revision; a delete that
 * removes the key does the same; a linearizable get answers the value and mod
 * revision the key holds at its linearization point, and the store's revision
 * there as its header revision (exactly: a read index read is served at one
 * applied revision).
 *
 * `checkHistory` first looks for violations that need no search
 * (`findViolation`), then searches. The search walks a linked list of call
 * and return events in time order. At a call it tries to place that
 * operation next (the model accepts it at the current state); it then lifts
 * the operation's two events out of the list and starts again from the head.
 * At a return whose operation is still in the list the current order cannot
 * be completed: it undoes the last choice and tries the next call after it.
 * It succeeds when the first event left is the return of an unknown
 * operation (every acknowledged operation is placed; the unknown ones left
 * never happened) and fails when it must undo with nothing to undo.
 *
 * Besides the model's own rules (kv-model.ts), two prunings keep it fast:
 * - memoization (Lowe): a (placed operations, model state) pair is explored
 *   once;
 * - reads first: an operation that does not change the state and that the
 *   model accepts now can always be placed now (a read placed later would see
 *   the same state, and placing it earlier only relaxes real-time order), so
 *   its alternatives are never explored.
 * A linearizable history of 2,000 operations is typically found with about
 * as many placements. A broken one with many writes of unknown outcome can
 * take far more (every way of filling revisions with them is tried up to the
 * point of failure): the search gives up after `placementsMax` placements and
 * says so.
 */
import assert from "node:assert/strict";
import { findViolation, Model, searched, type ModelState } from "./kv-model.js";

/** What an acknowledged put answered. */
export interface PutResult {
  revision: number;
}

/** What an acknowledged get answered: `value` undefined (and `modRevision` 0) when the key was absent. */
export interface GetResult {
  value: string | undefined;
  modRevision: number;
  /** The response header's revision. */
  revision: number;
}

/** What an acknowledged delete answered. */
export interface DeleteResult {
  deleted: number;
  revision: number;
}

/** `ok` with the server's answer, or `unknown`: the call failed or timed out, and may or may not have happened. */
export type Outcome<Result> = { status: "ok"; result: Result } | { status: "unknown"; error: string };

interface Timing {
  /** Who issued it; operations of one client do not overlap. */
  client: number;
  callMs: number;
  /** When the answer (or the error) came back; for an unknown outcome, only shown: it may take effect later. */
  returnMs: number;
}

export interface PutOperation extends Timing {
  type: "put";
  key: string;
  value: string;
  outcome: Outcome<PutResult>;
}

export interface GetOperation extends Timing {
  type: "get";
  key: string;
  outcome: Outcome<GetResult>;
}

export interface DeleteOperation extends Timing {
  type: "delete";
  key: string;
  outcome: Outcome<DeleteResult>;
}

export type Operation = PutOperation | GetOperation | DeleteOperation;

export interface KeyValue {
  value: string;
  modRevision: number;
}

/** The store before the first operation: its revision and the keys it holds. */
export interface StoreState {
  revision: number;
  keys: ReadonlyMap<string, KeyValue>;
}

export interface CheckOptions {
  /** The store before the history; revision 1 and no keys unless given (a fresh etcd). */
  initial?: StoreState;
  /** How many times the search may place an operation before it gives up (each placement is remembered: about 200 bytes). */
  placementsMax?: number;
  /** Skips `findViolation`, leaving every verdict to the search (for testing the search). */
  searchOnly?: boolean;
}

export type CheckResult =
  | { verdict: "linearizable"; /** Indexes into the history, in linearization order; writes of unknown outcome left out never happened. */ order: number[]; placements: number }
  | {
      verdict: "not linearizable";
      explanation: string;
      /** From the search: the longest order it could build, and the operation that could not follow it. */
      prefix?: number[];
      stuck?: number;
      placements: number;
    }
  | { verdict: "inconclusive"; explanation: string; placements: number };

const defaultPlacementsMax = 1_000_000;
/** How many operations an explanation lists from each list it shows. */
const explanationListMax = 12;

export function checkHistory(history: readonly Operation[], options: CheckOptions = {}): CheckResult {
  const model = new Model(history, options.initial ?? { revision: 1, keys: new Map() });
  if (options.searchOnly !== true) {
    const violation = findViolation(model);
    if (violation !== undefined) return { verdict: "not linearizable", explanation: `not linearizable: ${violation}`, placements: 0 };
  }
  return search(model, options.placementsMax ?? defaultPlacementsMax);
}

/** One event of the search's list: an operation's call or its return. */
interface Event {
  readonly operation: number;
  readonly isCall: boolean;
  /** Infinite for the return of an operation of unknown outcome. */
  readonly timeMs: number;
  /** The call's return event, or the return's call. */
  match: Event | undefined;
  previous: Event | undefined;
  next: Event | undefined;
}

/** The events in time order behind a sentinel head; at equal times calls come first (touching operations overlap). */
function eventList(history: readonly Operation[]): Event {
  const events: Event[] = [];
  history.forEach((operation, index) => {
    if (!searched(operation)) return;
    const returnMs = operation.outcome.status === "ok" ? operation.returnMs : Number.POSITIVE_INFINITY;
    assert.ok(Number.isFinite(operation.callMs) && operation.callMs <= returnMs, `#${index} returns (${returnMs}) before its call (${operation.callMs})`);
    const call: Event = { operation: index, isCall: true, timeMs: operation.callMs, match: undefined, previous: undefined, next: undefined };
    const ret: Event = { operation: index, isCall: false, timeMs: returnMs, match: call, previous: undefined, next: undefined };
    call.match = ret;
    events.push(call, ret);
  });
  events.sort((a, b) => a.timeMs - b.timeMs || Number(b.isCall) - Number(a.isCall) || a.operation - b.operation);
  const head: Event = { operation: -1, isCall: false, timeMs: Number.NEGATIVE_INFINITY, match: undefined, previous: undefined, next: undefined };
  let last = head;
  for (const event of events) {
    event.previous = last;
    last.next = event;
    last = event;
  }
  return head;
}

/** Takes a call and its return out of the list. */
function lift(call: Event): void {
  const ret = call.match!;
  call.previous!.next = call.next;
  if (call.next !== undefined) call.next.previous = call.previous;
  ret.previous!.next = ret.next;
  if (ret.next !== undefined) ret.next.previous = ret.previous;
}

/** Puts back what `lift` took out (in the reverse order). */
function unlift(call: Event): void {
  const ret = call.match!;
  ret.previous!.next = ret;
  if (ret.next !== undefined) ret.next.previous = ret;
  call.previous!.next = call;
  if (call.next !== undefined) call.next.previous = call;
}

interface Frame {
  readonly call: Event;
  /** The state before the operation. */
  readonly state: ModelState;
  readonly readOnly: boolean;
}

interface Deepest {
  prefix: number[];
  stuck: number;
  state: ModelState;
}

/**
 * The (placed operations, model state) pairs the search has been through.
 * The model's rules fix the placed operations by the state, the reads placed
 * at its revision (the read-only frames on top of the stack) and how far each
 * queue of writes of unknown outcome has gone (kv-model.ts).
 */
class Memo {
  private readonly seen = new Set<string>();

  /** Records the pair for `stack` with `next` on top and `state` after it; false if it was seen. */
  visit(state: ModelState, stack: readonly Frame[], next: number, nextReadOnly: boolean, queueHeads: Int32Array): boolean {
    const reads: number[] = [];
    if (nextReadOnly) {
      reads.push(next);
      for (let depth = stack.length - 1; depth >= 0 && stack[depth]!.readOnly; depth--) reads.push(stack[depth]!.call.operation);
    }
    const key = `${state.id}\u0002${queueHeads.join(",")}\u0002${reads.sort((a, b) => a - b).join(",")}`;
    if (this.seen.has(key)) return false;
    this.seen.add(key);
    return true;
  }
}

function search(model: Model, placementsMax: number): CheckResult {
  const history = model.history;
  let state = model.initialState();
  const head = eventList(history);
  const memo = new Memo();
  const stack: Frame[] = [];
  let deepest: Deepest | undefined;
  let placements = 0;
  let event = head.next;
  while (event !== undefined) {
    if (event.isCall) {
      const operation = event.operation;
      const next = model.step(state, operation);
      if (next !== undefined) {
        const readOnly = model.readOnly(operation);
        model.note(operation, true);
        if (memo.visit(next, stack, operation, readOnly, model.queueHeads)) {
          if (++placements > placementsMax) {
            const explanation = `inconclusive: gave up after ${placementsMax} placements, with at most ${deepest?.prefix.length ?? stack.length} of ${history.length} operations placed in order`;
            return { verdict: "inconclusive", explanation, placements };
          }
          stack.push({ call: event, state, readOnly });
          state = next;
          lift(event);
          event = head.next;
          continue;
        }
        model.note(operation, false);
        // A read the model accepts here could be placed first; it has been, and that failed.
        if (readOnly) event = undefined;
      }
      if (event !== undefined) {
        event = event.next;
        continue;
      }
    } else if (event.timeMs === Number.POSITIVE_INFINITY) {
      // Every acknowledged operation is placed; the writes of unknown outcome left never happened.
      return { verdict: "linearizable", order: stack.map((frame) => frame.call.operation), placements };
    }
    if (event !== undefined && (deepest === undefined || stack.length > deepest.prefix.length)) {
      deepest = { prefix: stack.map((frame) => frame.call.operation), stuck: event.operation, state };
    }
    // Undo the last choice that had alternatives (a read had none).
    let frame: Frame | undefined;
    do {
      frame = stack.pop();
      if (frame === undefined) break;
      state = frame.state;
      model.note(frame.call.operation, false);
      unlift(frame.call);
    } while (frame.readOnly);
    if (frame === undefined) {
      assert.ok(deepest !== undefined, "the search failed without being stuck");
      return failure(model, deepest, placements);
    }
    event = frame.call.next;
  }
  return { verdict: "linearizable", order: stack.map((frame) => frame.call.operation), placements };
}

function failure(model: Model, deepest: Deepest, placements: number): CheckResult {
  const { prefix, stuck, state } = deepest;
  const history = model.history;
  const placed = new Set(prefix);
  const stuckReturnMs = history[stuck]!.returnMs;
  const candidates = history.map((_, index) => index).filter((index) => !placed.has(index) && searched(history[index]!) && history[index]!.callMs <= stuckReturnMs);
  // The model as it was at the end of the prefix, for its reasons.
  for (const index of prefix) model.note(index, true);
  const lines = [
    `not linearizable: at most ${prefix.length} of ${history.length} operations could be placed in order; then this one could not:`,
    `  ${model.describe(stuck)}`,
    `  because ${model.whyNot(state, stuck)}`,
    `model state after the longest prefix: ${model.describeState(state)}`,
    `the prefix ends with:`,
    ...prefix.slice(-explanationListMax).map((index) => `  ${model.describe(index)}`),
    `operations called before it returned, not placed:`,
    ...candidates.slice(0, explanationListMax).map((index) => `  ${model.describe(index)}: ${model.whyNot(state, index)}`),
  ];
  if (candidates.length > explanationListMax) lines.push(`  … and ${candidates.length - explanationListMax} more`);
  for (const index of prefix.slice().reverse()) model.note(index, false);
  return { verdict: "not linearizable", prefix, stuck, explanation: lines.join("\n"), placements };
}
