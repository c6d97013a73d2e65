import assert from "node:assert/strict";
import { test } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { ResponseHeaderSchema, WatchResponseSchema } from "../../src/gen/etcdserverpb/rpc_pb.js";
import { Event_EventType, EventSchema } from "../../src/gen/mvccpb/kv_pb.js";
import type { KeyValue } from "../../src/mvcc/key-value.js";
import { encodeEvent, encodeResponse } from "../../src/mvcc/watch/wire.js";
import type { WatchEvent } from "../../src/mvcc/watchable-store.js";
import { toKeyValueMessage } from "../../src/server/range.js";
import { Random } from "../support/random.js";

/** The hand-written watch encoding gives exactly protobuf-es's bytes, for random events and responses. */
function randomKeyValue(random: Random, deleted: boolean): KeyValue {
  const bytes = (length: number) => Buffer.from(Array.from({ length }, () => random.int(0, 255)));
  if (deleted) return { key: bytes(random.int(1, 20)), createRevision: 0, modRevision: random.int(1, 2 ** 40), version: 0, value: new Uint8Array(0), lease: 0n };
  return {
    key: bytes(random.int(1, 300)),
    createRevision: random.int(1, 2 ** 40),
    modRevision: random.int(1, 2 ** 40),
    version: random.int(1, 1000),
    value: bytes(random.chance(0.2) ? 0 : random.int(1, 20_000)),
    lease: random.chance(0.5) ? 0n : BigInt(random.int(1, 2 ** 31)) * 4_294_967_296n,
  };
}

test("events and responses encode to protobuf's bytes", () => {
  const random = new Random(5);
  for (let round = 0; round < 200; round++) {
    const events: WatchEvent[] = Array.from({ length: random.int(0, 5) }, () => {
      const deleted = random.chance(0.4);
      const event: WatchEvent = { type: deleted ? "delete" : "put", kv: randomKeyValue(random, deleted) };
      if (random.chance(0.5)) event.prevKv = randomKeyValue(random, false);
      return event;
    });
    const header = create(ResponseHeaderSchema, { clusterId: 14841639068965178418n, memberId: 10276657743932975437n, revision: BigInt(random.int(0, 2 ** 40)), raftTerm: 2n });
    const fields = {
      watchId: random.pick([0, -1, 1, 7, 300, 2 ** 40]),
      created: random.chance(0.3),
      canceled: random.chance(0.3),
      compactRevision: random.chance(0.3) ? random.int(1, 2 ** 40) : 0,
      cancelReason: random.chance(0.3) ? "mvcc: duplicate watch ID provided on the WatchStream" : "",
      fragment: random.chance(0.3),
    };
    const expected = toBinary(
      WatchResponseSchema,
      create(WatchResponseSchema, {
        header,
        ...fields,
        watchId: BigInt(fields.watchId),
        compactRevision: BigInt(fields.compactRevision),
        events: events.map((event) =>
          create(EventSchema, {
            type: event.type === "put" ? Event_EventType.PUT : Event_EventType.DELETE,
            kv: toKeyValueMessage(event.kv),
            ...(event.prevKv === undefined ? {} : { prevKv: toKeyValueMessage(event.prevKv) }),
          }),
        ),
      }),
    );
    const actual = encodeResponse({ header: toBinary(ResponseHeaderSchema, header), ...fields, events: events.map(encodeEvent) });
    assert.deepEqual(Buffer.from(actual), Buffer.from(expected), `round ${round}`);
  }
});
