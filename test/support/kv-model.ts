/**
 * The model behind the linearizability checker (linearizability.ts): etcd's
 * KV store as key → {value, modRevision} plus the store's revision, and a
 * history prepared for the search.
 *
 * Revisions pin most of a history down. Every acknowledged write answered
 * the revision it made, so it owns that revision and can be placed only when
 * the store is one below it; an acknowledged read answered the revision it
 * was served at (its header revision), so it can be placed only there. What
 * is left to choose is the order of reads at one revision (any will do: they
 * change nothing) and which writes of unknown outcome fill the revisions no
 * acknowledged write owns. For those:
 * - a put of unknown outcome whose value a read saw, the only put of that
 *   value to its key, happened at the mod revision the read saw (it is
 *   "pinned" there, and owns that revision like an acknowledged write);
 * - the others wait in queues, by kind and key (with one queue of its own for
 *   a put whose value was seen but that cannot be pinned): the puts of one key
 *   whose values no read saw are interchangeable, and so are the deletes of
 *   one key, so only the first of a queue not placed yet may be placed;
 * - none may take a revision past the last one any acknowledged operation
 *   needs (nothing would observe it), nor a revision at which a read shows
 *   its key untouched (the read saw an older mod revision after it).
 * No write may be placed while an acknowledged read still needs the current
 * revision. With these rules the operations placed are fixed by the model
 * state, the reads placed at its revision and how far each queue has gone:
 * that triple is the search's memo key.
 *
 * `findViolation` checks the necessary conditions that need no search
 * (revisions owned twice, revisions against real time, reads against the
 * write that owns their mod revision), so that the common failures are found
 * at once and explained precisely.
 */
import assert from "node:assert/strict";
import type { Operation, StoreState } from "./linearizability.js";

/** The model's state: one value and mod revision per key (by key index), and the store's revision. */
export interface ModelState {
  readonly revision: number;
  readonly values: readonly (string | undefined)[];
  readonly modRevisions: readonly number[];
  /** A canonical string of the above, for memoization. */
  readonly id: string;
}

function modelState(revision: number, values: readonly (string | undefined)[], modRevisions: readonly number[]): ModelState {
  let id = String(revision);
  for (let key = 0; key < values.length; key++) {
    const value = values[key];
    id += value === undefined ? "\u0000-" : `\u0000${modRevisions[key]}\u0001${value}`;
  }
  return { revision, values, modRevisions, id };
}

/** Whether the search places `operation`: a read of unknown outcome constrains nothing and is left out. */
export function searched(operation: Operation): boolean {
  return operation.type !== "get" || operation.outcome.status === "ok";
}

/** The history prepared for the search; see the file comment. */
export class Model {
  readonly keyIndex = new Map<string, number>();
  /** Revision → the write that owns it: the acknowledged write that answered it, or a pinned put. */
  readonly owners = new Map<number, number>();
  /** The highest revision any acknowledged operation needs the store at. */
  readonly lastNeeded: number;
  /** How many operations of each queue are placed. */
  readonly queueHeads: Int32Array;
  /** Index → the revision the store must be at for the operation to be placed (undefined for queued writes). */
  private readonly needed: (number | undefined)[];
  /** Revision → how many acknowledged reads that need the store there are not placed yet. */
  private readonly readsPending = new Map<number, number>();
  private readonly queues: number[][] = [];
  private readonly queueOf = new Map<number, number>();
  /** Key → revisions at which a read shows the key untouched. */
  private readonly untouchedAt = new Map<string, Set<number>>();

  constructor(
    readonly history: readonly Operation[],
    readonly initial: StoreState,
  ) {
    for (const key of initial.keys.keys()) this.keyIndex.set(key, this.keyIndex.size);
    for (const operation of history) if (!this.keyIndex.has(operation.key)) this.keyIndex.set(operation.key, this.keyIndex.size);
    this.needed = history.map((_, index) => this.answeredNeeds(index));
    this.pinSeenPuts();
    this.queueUnknownWrites();
    this.queueHeads = new Int32Array(this.queues.length);
    this.findUntouched();
    let lastNeeded = initial.revision;
    this.needed.forEach((needs, index) => {
      if (needs === undefined) return;
      if (this.history[index]!.outcome.status === "ok") lastNeeded = Math.max(lastNeeded, needs);
      if (this.readOnly(index)) this.readsPending.set(needs, (this.readsPending.get(needs) ?? 0) + 1);
      // Two writes at one revision: the first owns it; the other is never placed (findViolation reports it).
      else if (!this.owners.has(needs + 1)) this.owners.set(needs + 1, index);
    });
    this.lastNeeded = lastNeeded;
  }

  private answeredNeeds(index: number): number | undefined {
    const operation = this.history[index]!;
    if (operation.outcome.status !== "ok") return undefined;
    return this.readOnly(index) ? operation.outcome.result.revision : operation.outcome.result.revision - 1;
  }

  /** Pins a put of unknown outcome to the mod revision a read saw its value at, if no other put wrote that value to that key. */
  private pinSeenPuts(): void {
    const writers = new Map<string, number[]>();
    this.history.forEach((operation, index) => {
      if (operation.type !== "put") return;
      const name = JSON.stringify([operation.key, operation.value]);
      writers.set(name, [...(writers.get(name) ?? []), index]);
    });
    for (const operation of this.history) {
      if (operation.type !== "get" || operation.outcome.status !== "ok" || operation.outcome.result.value === undefined) continue;
      const { value, modRevision } = operation.outcome.result;
      const candidates = writers.get(JSON.stringify([operation.key, value])) ?? [];
      const writer = candidates[0]!;
      if (candidates.length !== 1 || this.initial.keys.get(operation.key)?.value === value || modRevision <= this.initial.revision) continue;
      if (this.history[writer]!.outcome.status === "unknown" && this.needed[writer] === undefined) this.needed[writer] = modRevision - 1;
    }
  }

  private queueUnknownWrites(): void {
    const seen = new Set<string>();
    for (const [key, entry] of this.initial.keys) seen.add(JSON.stringify([key, entry.value]));
    for (const operation of this.history) {
      if (operation.type === "get" && operation.outcome.status === "ok") seen.add(JSON.stringify([operation.key, operation.outcome.result.value]));
    }
    const queueNumbers = new Map<string, number>();
    const byCall = this.history.map((_, index) => index).sort((a, b) => this.history[a]!.callMs - this.history[b]!.callMs || a - b);
    for (const index of byCall) {
      const operation = this.history[index]!;
      if (operation.type === "get" || operation.outcome.status === "ok" || this.needed[index] !== undefined) continue;
      const alone = operation.type === "put" && seen.has(JSON.stringify([operation.key, operation.value]));
      const name = alone ? `#${index}` : JSON.stringify([operation.type, operation.key]);
      const queue = queueNumbers.get(name) ?? this.queues.push([]) - 1;
      queueNumbers.set(name, queue);
      this.queues[queue]!.push(index);
      this.queueOf.set(index, queue);
    }
  }

  /** A read that saw a key at mod revision m with header revision h shows no write touched the key in (m, h]. */
  private findUntouched(): void {
    for (const operation of this.history) {
      if (operation.type !== "get" || operation.outcome.status !== "ok" || operation.outcome.result.value === undefined) continue;
      const { modRevision, revision } = operation.outcome.result;
      const untouched = this.untouchedAt.get(operation.key) ?? new Set<number>();
      this.untouchedAt.set(operation.key, untouched);
      for (let between = modRevision + 1; between <= revision; between++) untouched.add(between);
    }
  }

  initialState(): ModelState {
    const values = new Array<string | undefined>(this.keyIndex.size).fill(undefined);
    const modRevisions = new Array<number>(this.keyIndex.size).fill(0);
    for (const [key, entry] of this.initial.keys) {
      assert.ok(entry.modRevision >= 1 && entry.modRevision <= this.initial.revision, `initial ${key} at mod revision ${entry.modRevision}, store at ${this.initial.revision}`);
      values[this.keyIndex.get(key)!] = entry.value;
      modRevisions[this.keyIndex.get(key)!] = entry.modRevision;
    }
    return modelState(this.initial.revision, values, modRevisions);
  }

  /** The revision the store must be at for the operation to be placed; undefined for a queued write of unknown outcome. */
  needs(index: number): number | undefined {
    return this.needed[index];
  }

  /** Whether the operation leaves the state as it is whenever the model accepts it. */
  readOnly(index: number): boolean {
    const operation = this.history[index]!;
    return operation.type === "get" || (operation.type === "delete" && operation.outcome.status === "ok" && operation.outcome.result.deleted === 0);
  }

  /** Notes that the search placed (`placed` true) or took back the operation. */
  note(index: number, placed: boolean): void {
    if (this.readOnly(index)) {
      const needs = this.needed[index]!;
      const pending = this.readsPending.get(needs)! + (placed ? -1 : 1);
      assert.ok(pending >= 0, `#${index} placed twice`);
      this.readsPending.set(needs, pending);
    }
    const queue = this.queueOf.get(index);
    if (queue !== undefined) {
      const head = this.queueHeads[queue]! + (placed ? 1 : -1);
      assert.equal(this.queues[queue]![placed ? head - 1 : head], index, `#${index} placed out of its queue's order`);
      this.queueHeads[queue] = head;
    }
  }

  /** The state after the operation at `state`, or undefined if the model does not accept it there. */
  step(state: ModelState, index: number): ModelState | undefined {
    const operation = this.history[index]!;
    const key = this.keyIndex.get(operation.key)!;
    const needs = this.needed[index];
    if (operation.type === "get") {
      if (operation.outcome.status !== "ok") return undefined;
      const result = operation.outcome.result;
      const matches = needs === state.revision && result.value === state.values[key] && result.modRevision === state.modRevisions[key];
      return matches ? state : undefined;
    }
    if (this.readOnly(index)) return needs === state.revision && state.values[key] === undefined ? state : undefined;
    const next = state.revision + 1;
    if ((this.readsPending.get(state.revision) ?? 0) > 0) return undefined;
    if (needs !== undefined) {
      if (needs !== state.revision || this.owners.get(next) !== index) return undefined;
    } else if (this.owners.has(next) || next > this.lastNeeded || this.queuedBehind(index) || this.untouched(operation.key, next)) {
      return undefined;
    }
    if (operation.type === "delete") {
      if (state.values[key] === undefined) return undefined;
      if (operation.outcome.status === "ok" && operation.outcome.result.deleted !== 1) return undefined;
    }
    const values = state.values.slice();
    const modRevisions = state.modRevisions.slice();
    values[key] = operation.type === "put" ? operation.value : undefined;
    modRevisions[key] = operation.type === "put" ? next : 0;
    return modelState(next, values, modRevisions);
  }

  private queuedBehind(index: number): boolean {
    const queue = this.queueOf.get(index);
    return queue !== undefined && this.queues[queue]![this.queueHeads[queue]!] !== index;
  }

  private untouched(key: string, revision: number): boolean {
    return this.untouchedAt.get(key)?.has(revision) === true;
  }

  /** Why the model does not accept the operation at `state`, in words. */
  whyNot(state: ModelState, index: number): string {
    const operation = this.history[index]!;
    const key = this.keyIndex.get(operation.key)!;
    const needs = this.needed[index];
    const next = state.revision + 1;
    if (this.step(state, index) !== undefined) return "it could be placed here, but every order that went on from there failed";
    if (needs !== undefined && needs !== state.revision) return `it needs the store at revision ${needs}, and the model is at ${state.revision}`;
    const pendingReads = this.readsPending.get(state.revision) ?? 0;
    if (!this.readOnly(index) && pendingReads > 0) return `${pendingReads} acknowledged read(s) still need revision ${state.revision}`;
    if (needs !== undefined && !this.readOnly(index) && this.owners.get(next) !== index) return `revision ${next} belongs to #${this.owners.get(next)}`;
    if (needs === undefined) {
      if (this.owners.has(next)) return `revision ${next} belongs to #${this.owners.get(next)}`;
      if (next > this.lastNeeded) return `no acknowledged operation needs a revision past ${this.lastNeeded}`;
      if (this.untouched(operation.key, next)) return `a read shows ${operation.key} untouched at revision ${next}`;
      if (this.queuedBehind(index)) return `an earlier ${operation.type} of ${operation.key} of unknown outcome stands for it`;
    }
    return `the model holds ${operation.key}=${describeValue(state.values[key], state.modRevisions[key]!)} at revision ${state.revision}`;
  }

  describe(index: number): string {
    const operation = this.history[index]!;
    let text = `#${index} client ${operation.client} ${operation.type} ${operation.key}`;
    if (operation.type === "put") text += `=${JSON.stringify(operation.value)}`;
    if (operation.outcome.status === "unknown") {
      text += ` → unknown (${operation.outcome.error})`;
    } else if (operation.type === "put") {
      text += ` → revision ${operation.outcome.result.revision}`;
    } else if (operation.type === "get") {
      const result = operation.outcome.result;
      text += ` → ${describeValue(result.value, result.modRevision)}, header revision ${result.revision}`;
    } else {
      text += ` → deleted ${operation.outcome.result.deleted}, revision ${operation.outcome.result.revision}`;
    }
    const returned = operation.outcome.status === "ok" ? operation.returnMs.toFixed(1) : `∞ (gave up at ${operation.returnMs.toFixed(1)})`;
    return `${text} [called ${operation.callMs.toFixed(1)} ms, returned ${returned}]`;
  }

  describeState(state: ModelState): string {
    const keys = [...this.keyIndex].map(([name, key]) => `${name}=${describeValue(state.values[key], state.modRevisions[key]!)}`);
    return `revision ${state.revision}; ${keys.join(", ")}`;
  }
}

function describeValue(value: string | undefined, modRevision: number): string {
  return value === undefined ? "absent" : `${JSON.stringify(value)}@${modRevision}`;
}

/**
 * A violation found without search, in words, or undefined: a revision owned
 * twice, an operation that began after another returned but needs an older
 * revision, or a read of a value its mod revision's write did not write, or
 * that missed a write to its key between its mod revision and its header.
 */
export function findViolation(model: Model): string | undefined {
  return twiceOwned(model) ?? againstRealTime(model) ?? readsAgainstWrites(model);
}

function twiceOwned(model: Model): string | undefined {
  for (let index = 0; index < model.history.length; index++) {
    const needs = model.needs(index);
    if (needs === undefined || model.readOnly(index) || model.owners.get(needs + 1) === index) continue;
    const owner = model.owners.get(needs + 1)!;
    return `two writes at revision ${needs + 1}:\n  ${model.describe(owner)}\n  ${model.describe(index)}${pinnedNote(model, owner)}${pinnedNote(model, index)}`;
  }
  return undefined;
}

function pinnedNote(model: Model, index: number): string {
  return model.history[index]!.outcome.status === "unknown" ? `\n  (a read saw #${index}'s value at mod revision ${model.needs(index)! + 1})` : "";
}

/** If a returned before b was called, a's revision after it may not exceed b's before it. */
function againstRealTime(model: Model): string | undefined {
  const history = model.history;
  const timed = history.map((_, index) => index).filter((index) => model.needs(index) !== undefined);
  const byCall = timed.slice().sort((a, b) => history[a]!.callMs - history[b]!.callMs);
  const byReturn = timed.filter((index) => history[index]!.outcome.status === "ok").sort((a, b) => history[a]!.returnMs - history[b]!.returnMs);
  const after = (index: number) => model.needs(index)! + (model.readOnly(index) ? 0 : 1);
  let latest: number | undefined;
  let returned = 0;
  for (const index of byCall) {
    while (returned < byReturn.length && history[byReturn[returned]!]!.returnMs < history[index]!.callMs) {
      const candidate = byReturn[returned++]!;
      if (latest === undefined || after(candidate) > after(latest)) latest = candidate;
    }
    if (latest !== undefined && model.needs(index)! < after(latest)) {
      return `revisions against real time: this returned at revision ${after(latest)}\n  ${model.describe(latest)}\nbefore this was called, which needs revision ${model.needs(index)}\n  ${model.describe(index)}${pinnedNote(model, index)}`;
    }
  }
  return undefined;
}

function readsAgainstWrites(model: Model): string | undefined {
  const history = model.history;
  const writesByKey = new Map<string, number[]>();
  for (const [revision, owner] of model.owners) {
    const key = history[owner]!.key;
    writesByKey.set(key, [...(writesByKey.get(key) ?? []), revision]);
  }
  for (const revisions of writesByKey.values()) revisions.sort((a, b) => a - b);
  for (let index = 0; index < history.length; index++) {
    const operation = history[index]!;
    if (operation.type !== "get" || operation.outcome.status !== "ok" || operation.outcome.result.value === undefined) continue;
    const { value, modRevision, revision } = operation.outcome.result;
    const read = model.describe(index);
    if (modRevision > revision) return `a read of a mod revision past its header revision:\n  ${read}`;
    const owner = model.owners.get(modRevision);
    if (owner !== undefined) {
      const write = history[owner]!;
      if (write.type !== "put" || write.key !== operation.key || write.value !== value) return `a read of what revision ${modRevision} did not write:\n  ${read}\n  ${model.describe(owner)}`;
    } else if (modRevision <= model.initial.revision) {
      const entry = model.initial.keys.get(operation.key);
      if (entry?.value !== value || entry.modRevision !== modRevision) return `a read of a value the store did not hold at first:\n  ${read}`;
    } else if (!history.some((write) => write.type === "put" && write.key === operation.key && write.value === value && write.outcome.status === "unknown")) {
      return `a read of a value no put of unknown outcome could have written at revision ${modRevision}:\n  ${read}`;
    }
    const revisions = writesByKey.get(operation.key) ?? [];
    const missed = revisions[firstAbove(revisions, modRevision)];
    if (missed !== undefined && missed <= revision) return `a read that missed a write to its key before its header revision:\n  ${read}\n  ${model.describe(model.owners.get(missed)!)}`;
  }
  return undefined;
}

/** The position of the first element of sorted `values` above `bound`. */
function firstAbove(values: readonly number[], bound: number): number {
  let low = 0;
  let high = values.length;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (values[middle]! <= bound) low = middle + 1;
    else high = middle;
  }
  return low;
}
