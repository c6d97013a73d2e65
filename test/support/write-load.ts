import { setTimeout as sleep } from "node:timers/promises";
import { PutRequestSchema, PutResponseSchema, RangeRequestSchema, RangeResponseSchema } from "../../src/gen/etcdserverpb/rpc_pb.js";
import { EtcdClient } from "./client.js";

/** How long one put may take before the writer gives up on it and tries another member. */
const putTimeoutMs = 3_000;

/**
 * Concurrent writers putting unique keys (`<prefix><writer>-<n>`), each through
 * one member until a put fails, then through the next. Every acknowledged put
 * is recorded: a cluster that lost one would be caught by `missingFrom`.
 */
export class WriteLoad {
  /** Acknowledged puts: key → value. */
  readonly acknowledged = new Map<string, string>();
  failures = 0;
  private running = true;
  private readonly writers: Promise<void>[];
  private readonly clients: EtcdClient[];

  constructor(
    endpoints: readonly string[],
    writerCount: number,
    private readonly prefix = "load/",
  ) {
    this.clients = endpoints.map((endpoint) => new EtcdClient(endpoint));
    this.writers = Array.from({ length: writerCount }, (_, writer) => this.write(writer));
  }

  private async write(writer: number): Promise<void> {
    let target = writer % this.clients.length;
    for (let n = 0; this.running; n++) {
      const key = `${this.prefix}${writer}-${n}`;
      const value = `v${n}`;
      const result = await this.clients[target]!.kv.call("put", PutRequestSchema, { key: Buffer.from(key), value: Buffer.from(value) }, PutResponseSchema, putTimeoutMs);
      if (result.ok) {
        this.acknowledged.set(key, value);
      } else {
        this.failures++;
        target = (target + 1) % this.clients.length;
        await sleep(50);
      }
    }
  }

  /** Waits until at least `count` more puts are acknowledged (or the time runs out). */
  async waitForMore(count: number, timeoutMs = 20_000): Promise<void> {
    const goal = this.acknowledged.size + count;
    const deadline = Date.now() + timeoutMs;
    while (this.acknowledged.size < goal && Date.now() < deadline) await sleep(20);
    if (this.acknowledged.size < goal) throw new Error(`only ${this.acknowledged.size} of ${goal} puts acknowledged within ${timeoutMs} ms`);
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.writers);
    for (const client of this.clients) client.close();
  }
}

/** Keys of `expected` that `endpoint` does not hold with the expected value (read serializably, so any member answers from its own store). */
export async function missingFrom(endpoint: string, expected: ReadonlyMap<string, string>, prefix = "load/"): Promise<string[]> {
  const client = new EtcdClient(endpoint);
  try {
    const end = Buffer.from(prefix);
    end[end.length - 1]! += 1;
    const result = await client.kv.call("range", RangeRequestSchema, { key: Buffer.from(prefix), rangeEnd: end, serializable: true }, RangeResponseSchema, 10_000);
    if (!result.ok) throw new Error(`range on ${endpoint} failed: ${result.message}`);
    const held = new Map(result.response.kvs.map((kv) => [Buffer.from(kv.key).toString(), Buffer.from(kv.value).toString()]));
    return [...expected].filter(([key, value]) => held.get(key) !== value).map(([key]) => key);
  } finally {
    client.close();
  }
}
