import { RangeRequestSchema, RangeResponseSchema } from "../../src/gen/etcdserverpb/rpc_pb.js";
import type { KeyValue } from "../../src/gen/mvccpb/kv_pb.js";
import type { EtcdClient } from "../support/client.js";
import type { HistoryEvent } from "./checkers.js";

/**
 * The events of revisions [from, to] on keys [key, rangeEnd), derived from the
 * KV API alone: the range at each revision compared with the one before it.
 * A key whose mod revision is r was put at r; a key present at r - 1 and gone
 * at r was deleted at r. This is an oracle independent of the watch code.
 * Every revision from `from - 1` on must not be compacted.
 */
export async function historyFromRanges(client: EtcdClient, key: Buffer, rangeEnd: Buffer, from: number, to: number): Promise<HistoryEvent[]> {
  const events: HistoryEvent[] = [];
  let before = await stateAt(client, key, rangeEnd, from - 1);
  for (let revision = from; revision <= to; revision++) {
    const after = await stateAt(client, key, rangeEnd, revision);
    for (const [name, kv] of after) {
      if (Number(kv.modRevision) !== revision) continue;
      events.push({
        revision,
        type: "PUT",
        key: name,
        value: Buffer.from(kv.value).toString("latin1"),
        createRevision: Number(kv.createRevision),
        version: Number(kv.version),
      });
    }
    for (const name of before.keys()) {
      if (!after.has(name)) events.push({ revision, type: "DELETE", key: name, value: "", createRevision: 0, version: 0 });
    }
    before = after;
  }
  return events;
}

async function stateAt(client: EtcdClient, key: Buffer, rangeEnd: Buffer, revision: number): Promise<Map<string, KeyValue>> {
  const state = new Map<string, KeyValue>();
  if (revision < 1) return state;
  const result = await client.kv.call("range", RangeRequestSchema, { key, rangeEnd, revision: BigInt(revision) }, RangeResponseSchema);
  if (!result.ok) throw new Error(`range at ${revision}: ${result.message}`);
  for (const kv of result.response.kvs) state.set(Buffer.from(kv.key).toString("latin1"), kv);
  return state;
}

/** The end of the range of every key with `prefix`. */
export function prefixEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix, "latin1");
  end[end.length - 1]!++;
  return end;
}
