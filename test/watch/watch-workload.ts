import type { MessageInitShape } from "@bufbuild/protobuf";
import type { WatchCreateRequestSchema } from "../../src/gen/etcdserverpb/rpc_pb.js";
import { WatchCreateRequest_FilterType as FilterType } from "../../src/gen/etcdserverpb/rpc_pb.js";
import type { Random } from "../support/random.js";

/**
 * Seeded random steps for the watch differential test: writes (puts,
 * multi-key txns, range deletes), compactions, and watch requests (create with
 * every kind of range and option, cancel, progress).
 */
export type WatchStep =
  | { kind: "put"; key: string; value: string }
  | { kind: "txn"; puts: string[]; deletes: Array<{ key: string; end?: string }> }
  | { kind: "deleteRange"; key: string; end?: string }
  | { kind: "compact"; revision: number }
  | { kind: "watch"; request: MessageInitShape<typeof WatchCreateRequestSchema> }
  | { kind: "cancel"; watchId: bigint }
  | { kind: "progress" };

export interface WorkloadState {
  /** The store's revision, as the last write reported it. */
  revision: number;
  compactRevision: number;
  /** Ids of watches created and not canceled. */
  watchIds: bigint[];
}

const keys = ["a", "b", "c", "d", "e", "p/1", "p/2", "p/3", "p/4", "q"];

/** Key ranges a watch can cover: [key, end) with end "" for a single key and "\0" for from-key. */
const ranges: Array<{ key: string; end: string }> = [
  { key: "a", end: "" },
  { key: "p/2", end: "" },
  { key: "p/", end: "p0" },
  { key: "c", end: "\0" },
  { key: "\0", end: "\0" },
  { key: "b", end: "d" },
  { key: "q", end: "a" },
];

export function nextStep(random: Random, state: WorkloadState): WatchStep {
  const choice = random.next();
  if (choice < 0.35) return { kind: "put", key: random.pick(keys), value: `v${random.int(0, 999)}` };
  if (choice < 0.55) return txnStep(random);
  if (choice < 0.65) return deleteStep(random);
  if (choice < 0.7 && state.revision > state.compactRevision + 1) {
    return { kind: "compact", revision: random.int(state.compactRevision + 1, state.revision) };
  }
  if (choice < 0.88) return watchStep(random, state);
  if (choice < 0.95 && state.watchIds.length > 0) return { kind: "cancel", watchId: random.pick(state.watchIds) };
  return { kind: "progress" };
}

function txnStep(random: Random): WatchStep {
  const chosen = [...keys].sort(() => random.next() - 0.5).slice(0, random.int(2, 4));
  const puts = chosen.filter(() => random.chance(0.7));
  const deletes = chosen.filter((key) => !puts.includes(key)).map((key) => ({ key }));
  return { kind: "txn", puts, deletes };
}

function deleteStep(random: Random): WatchStep {
  const choice = random.next();
  if (choice < 0.4) return { kind: "deleteRange", key: random.pick(keys) };
  if (choice < 0.7) return { kind: "deleteRange", key: "p/", end: "p0" };
  return { kind: "deleteRange", key: "b", end: "e" };
}

function watchStep(random: Random, state: WorkloadState): WatchStep {
  const range = random.pick(ranges);
  const filters: FilterType[] = [];
  if (random.chance(0.15)) filters.push(FilterType.NOPUT);
  if (random.chance(0.15)) filters.push(FilterType.NODELETE);
  let startRevision = 0;
  if (random.chance(0.5)) startRevision = random.int(Math.max(1, state.compactRevision - 3), state.revision + 2);
  return {
    kind: "watch",
    request: {
      key: Buffer.from(range.key, "latin1"),
      rangeEnd: Buffer.from(range.end, "latin1"),
      startRevision: BigInt(startRevision),
      prevKv: random.chance(0.4),
      filters,
      progressNotify: random.chance(0.2),
      ...(random.chance(0.1) ? { watchId: BigInt(random.int(1, 40)) } : {}),
    },
  };
}
