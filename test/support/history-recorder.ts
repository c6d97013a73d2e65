/**
 * Concurrent clients that record a history for the linearizability checker
 * (linearizability.ts): each issues linearizable gets, puts of unique values
 * and (rarely) deletes on a few shared keys, one at a time, through one
 * member until a call fails, then through the next. Every call carries a
 * deadline; a call that fails or times out is recorded with an unknown
 * outcome (it may still take effect).
 */
import { setTimeout as sleep } from "node:timers/promises";
import {
  DeleteRangeRequestSchema,
  DeleteRangeResponseSchema,
  PutRequestSchema,
  PutResponseSchema,
  RangeRequestSchema,
  RangeResponseSchema,
} from "../../src/gen/etcdserverpb/rpc_pb.js";
import { EtcdClient } from "./client.js";
import type { Operation, StoreState } from "./linearizability.js";
import { Random } from "./random.js";

export interface RecorderOptions {
  /** Client endpoints (host:port); client c starts on endpoint c mod their number. */
  endpoints: readonly string[];
  clientCount: number;
  keys: readonly string[];
  seed: number;
  /** Each call's deadline. */
  callTimeoutMs?: number;
  /** A client's pause between calls: uniform in [0, 2 × this]. */
  pauseMs?: number;
  /** A client's pause after a failed call, before it tries the next member. */
  failurePauseMs?: number;
  /** Stop issuing calls once the history holds this many operations. */
  operationsMax?: number;
}

const defaults = { callTimeoutMs: 2_000, pauseMs: 35, failurePauseMs: 100, operationsMax: 10_000 } as const;
/** Shares of gets and puts among calls; the rest are deletes. */
const getShare = 0.5;
const putShare = 0.42;

export class HistoryRecorder {
  readonly history: Operation[] = [];
  private running = false;
  private clients: Promise<void>[] = [];
  private readonly connections: EtcdClient[][];
  private readonly settings: Required<RecorderOptions>;

  constructor(options: RecorderOptions) {
    this.settings = { ...defaults, ...options };
    this.connections = Array.from({ length: options.clientCount }, () => options.endpoints.map((endpoint) => new EtcdClient(endpoint)));
  }

  /** The store as linearizable reads see it now (call before `start`, with nothing else writing). */
  async initialState(timeoutMs = 10_000): Promise<StoreState> {
    const deadline = Date.now() + timeoutMs;
    for (let attempt = 0; Date.now() < deadline; attempt++) {
      const connection = this.connections[0]![attempt % this.settings.endpoints.length]!;
      const reads = await Promise.all(this.settings.keys.map((key) => connection.kv.call("range", RangeRequestSchema, { key: Buffer.from(key) }, RangeResponseSchema, this.settings.callTimeoutMs)));
      const revisions = new Set(reads.map((read) => (read.ok ? Number(read.response.header?.revision ?? 0n) : -1)));
      const [revision] = revisions;
      if (revisions.size === 1 && revision !== undefined && revision > 0) {
        const keys = new Map<string, { value: string; modRevision: number }>();
        reads.forEach((read, index) => {
          const kv = read.ok ? read.response.kvs[0] : undefined;
          if (kv !== undefined) keys.set(this.settings.keys[index]!, { value: Buffer.from(kv.value).toString(), modRevision: Number(kv.modRevision) });
        });
        return { revision, keys };
      }
      await sleep(200);
    }
    throw new Error(`could not read the initial state within ${timeoutMs} ms`);
  }

  start(): void {
    this.running = true;
    this.clients = this.connections.map((_, client) => this.run(client));
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.clients);
    for (const connection of this.connections) for (const client of connection) client.close();
  }

  private async run(client: number): Promise<void> {
    const random = new Random(this.settings.seed * 1_000 + client);
    let target = client % this.settings.endpoints.length;
    for (let n = 0; this.running && this.history.length < this.settings.operationsMax; n++) {
      const key = random.pick(this.settings.keys);
      const kind = random.next();
      const connection = this.connections[client]![target]!;
      const operation = kind < getShare ? await this.get(connection, client, key) : kind < getShare + putShare ? await this.put(connection, client, key, `c${client}-${n}`) : await this.delete(connection, client, key);
      this.history.push(operation);
      if (operation.outcome.status === "unknown") {
        target = (target + 1) % this.settings.endpoints.length;
        await sleep(this.settings.failurePauseMs);
      } else {
        await sleep(random.next() * 2 * this.settings.pauseMs);
      }
    }
  }

  private async get(connection: EtcdClient, client: number, key: string): Promise<Operation> {
    const callMs = performance.now();
    const result = await connection.kv.call("range", RangeRequestSchema, { key: Buffer.from(key), serializable: false }, RangeResponseSchema, this.settings.callTimeoutMs);
    const returnMs = performance.now();
    if (!result.ok) return { type: "get", client, key, callMs, returnMs, outcome: { status: "unknown", error: `${result.code}: ${result.message}` } };
    const kv = result.response.kvs[0];
    const value = kv === undefined ? undefined : Buffer.from(kv.value).toString();
    const outcome = { status: "ok" as const, result: { value, modRevision: Number(kv?.modRevision ?? 0n), revision: Number(result.response.header?.revision ?? 0n) } };
    return { type: "get", client, key, callMs, returnMs, outcome };
  }

  private async put(connection: EtcdClient, client: number, key: string, value: string): Promise<Operation> {
    const callMs = performance.now();
    const result = await connection.kv.call("put", PutRequestSchema, { key: Buffer.from(key), value: Buffer.from(value) }, PutResponseSchema, this.settings.callTimeoutMs);
    const returnMs = performance.now();
    if (!result.ok) return { type: "put", client, key, value, callMs, returnMs, outcome: { status: "unknown", error: `${result.code}: ${result.message}` } };
    return { type: "put", client, key, value, callMs, returnMs, outcome: { status: "ok", result: { revision: Number(result.response.header?.revision ?? 0n) } } };
  }

  private async delete(connection: EtcdClient, client: number, key: string): Promise<Operation> {
    const callMs = performance.now();
    const result = await connection.kv.call("deleteRange", DeleteRangeRequestSchema, { key: Buffer.from(key) }, DeleteRangeResponseSchema, this.settings.callTimeoutMs);
    const returnMs = performance.now();
    if (!result.ok) return { type: "delete", client, key, callMs, returnMs, outcome: { status: "unknown", error: `${result.code}: ${result.message}` } };
    const outcome = { status: "ok" as const, result: { deleted: Number(result.response.deleted), revision: Number(result.response.header?.revision ?? 0n) } };
    return { type: "delete", client, key, callMs, returnMs, outcome };
  }
}

/** Counts of a history's operations by type and outcome, for diagnostics. */
export function summarize(history: readonly Operation[]): string {
  const counts = new Map<string, number>();
  for (const operation of history) {
    const name = `${operation.type} ${operation.outcome.status}`;
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  return `${history.length} operations: ${[...counts].sort().map(([name, count]) => `${count} ${name}`).join(", ")}`;
}
