import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { after, describe, test } from "node:test";
import { PutRequestSchema, PutResponseSchema } from "../../src/gen/etcdserverpb/rpc_pb.js";
import { EtcdClient } from "../support/client.js";
import { startTetcd, temporaryDirectory, type ServerProcess } from "../support/processes.js";
import { checkStream, eventsOf, toHistoryEvent } from "./checkers.js";
import { prefixEnd } from "./history-oracle.js";
import { eventRevision, responsesOf, WatchClient } from "./watch-client.js";

/**
 * A member killed (SIGKILL) in the middle of concurrent writes and restarted:
 * a client that watches again from its last revision + 1 gets every event it
 * missed, nothing twice, every acknowledged write among them. The catch-up
 * after the restart reads the backend (no recent changes are in memory), over
 * more revisions than one catch-up response carries.
 */
const writers = 32;
const putsBeforeKill = 2500;
const prefix = "r/";

const dataDir = temporaryDirectory("tetcd-watch-restart");
const servers: ServerProcess[] = [];
after(async () => {
  for (const server of servers) await server.stop("SIGKILL");
  rmSync(dataDir, { recursive: true, force: true });
});

interface Acknowledged {
  key: string;
  value: string;
  revision: number;
}

/** Concurrent puts until the server dies; returns the acknowledged ones. */
async function writeUntilKilled(kv: EtcdClient, kill: () => Promise<void>): Promise<Acknowledged[]> {
  const acknowledged: Acknowledged[] = [];
  let issued = 0;
  let killing: Promise<void> | undefined;
  await Promise.all(
    Array.from({ length: writers }, async (_, writer) => {
      for (;;) {
        const index = issued++;
        if (index === putsBeforeKill) killing = kill();
        const key = `${prefix}${writer}`;
        const value = `${index}`;
        const result = await kv.kv.call("put", PutRequestSchema, { key: Buffer.from(key), value: Buffer.from(value) }, PutResponseSchema);
        if (!result.ok) return;
        acknowledged.push({ key, value, revision: Number(result.response.header!.revision) });
      }
    }),
  );
  await killing;
  return acknowledged;
}

describe("watch across a member restart", () => {
  test("a watch resumed from the last revision received + 1 loses nothing and repeats nothing", async () => {
    const first = await startTetcd({ dataDir });
    servers.push(first);
    const kv = new EtcdClient(first.endpoint);
    const watch = new WatchClient(first.endpoint);
    const live = watch.open();
    live.watch({ key: Buffer.from(prefix), rangeEnd: prefixEnd(prefix) });
    await live.waitFor((responses) => responses.some((response) => response.created), "created");
    const acknowledged = await writeUntilKilled(kv, () => first.stop("SIGKILL"));
    watch.close();
    kv.close();
    const before = eventsOf(responsesOf(live.responses, 0n));
    assert.deepEqual(checkStream(responsesOf(live.responses, 0n)), []);
    const lastSeen = before.length === 0 ? 1 : eventRevision(before[before.length - 1]!);

    const second = await startTetcd({ dataDir, port: Number(first.endpoint.split(":")[1]) });
    servers.push(second);
    const kvAfter = new EtcdClient(second.endpoint);
    const watchAfter = new WatchClient(second.endpoint);
    try {
      const marker = await kvAfter.kv.call("put", PutRequestSchema, { key: Buffer.from(`${prefix}end`), value: Buffer.from("end") }, PutResponseSchema);
      assert.ok(marker.ok);
      const end = Number(marker.response.header!.revision);
      const resumed = watchAfter.open();
      resumed.watch({ key: Buffer.from(prefix), rangeEnd: prefixEnd(prefix), startRevision: BigInt(lastSeen + 1) });
      await resumed.waitFor((responses) => eventsOf(responses).some((event) => eventRevision(event) === end), "the events up to the marker");
      const own = responsesOf(resumed.responses, 0n);
      assert.deepEqual(checkStream(own), [], "resumed stream properties");
      const after = eventsOf(own);
      const revisions = [...before, ...after].map(eventRevision);
      // Every revision is one put under the prefix: the events are exactly the revisions 2..end, once each.
      assert.deepEqual(revisions, Array.from({ length: end - 1 }, (_, index) => index + 2), "no gap and no repeat across the restart");
      const seen = new Set([...before, ...after].map((event) => { const history = toHistoryEvent(event); return `${history.revision} ${history.key}=${history.value}`; }));
      for (const write of acknowledged) assert.ok(seen.has(`${write.revision} ${write.key}=${write.value}`), `acknowledged write at ${write.revision} seen`);

      const full = watchAfter.open();
      full.watch({ key: Buffer.from(prefix), rangeEnd: prefixEnd(prefix), startRevision: 2n });
      full.requestProgress();
      await full.waitFor((responses) => eventsOf(responses).some((event) => eventRevision(event) === end), "the whole history");
      await full.waitFor((responses) => responses.some((response) => response.watchId === -1n), "the stream-wide progress response");
      const progressAt = full.responses.findIndex((response) => response.watchId === -1n);
      const progressRevision = Number(full.responses[progressAt]!.header!.revision);
      assert.deepEqual(eventsOf(full.responses.slice(progressAt)).filter((event) => eventRevision(event) <= progressRevision), [], "a progress response comes only once the stream's watchers have every event up to it");
      const fullResponses = responsesOf(full.responses, 0n);
      assert.deepEqual(checkStream(fullResponses), [], "full catch-up stream properties");
      assert.deepEqual(eventsOf(fullResponses).map(eventRevision), revisions, "the whole history from the backend equals what was watched live");
      const withEvents = fullResponses.filter((response) => response.events.length > 0);
      assert.ok(withEvents.length >= Math.ceil((end - 1) / 1000), `a catch-up of ${end - 1} revisions comes in responses of at most 1000 revisions (${withEvents.length})`);
    } finally {
      watchAfter.close();
      kvAfter.close();
    }
  });
});
