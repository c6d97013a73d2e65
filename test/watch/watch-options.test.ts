import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { toJson } from "@bufbuild/protobuf";
import * as rpc from "../../src/gen/etcdserverpb/rpc_pb.js";
import { EtcdClient } from "../support/client.js";
import { startEtcd, startTetcd, type ServerProcess } from "../support/processes.js";
import { checkStream } from "./checkers.js";
import { prefixEnd } from "./history-oracle.js";
import { responsesOf, WatchClient, type RecordedStream } from "./watch-client.js";

/**
 * Options whose effect shows in the shape of responses, compared response by
 * response with etcd 3.4: fragments of a revision too large for one message,
 * and progress notifications on an interval.
 */
const progressIntervalArgs = ["--experimental-watch-progress-notify-interval", "200ms"];
const valueBytes = 100 * 1024;
const keysPerTxn = 12;

interface Target {
  server: ServerProcess;
  kv: EtcdClient;
  watch: WatchClient;
}

const targets: Target[] = [];

before(async () => {
  const servers = await Promise.all([startTetcd({ extraArgs: progressIntervalArgs }), startEtcd({ extraArgs: progressIntervalArgs })]);
  for (const server of servers) targets.push({ server, kv: new EtcdClient(server.endpoint), watch: new WatchClient(server.endpoint) });
});

after(async () => {
  for (const target of targets) {
    target.watch.close();
    target.kv.close();
  }
  await Promise.all(targets.map((target) => target.server.stop()));
});

/** A response without the ids that differ between servers, values replaced by their length (failures stay readable). */
function comparable(response: rpc.WatchResponse): unknown {
  const json = toJson(rpc.WatchResponseSchema, response, { alwaysEmitImplicit: false }) as Record<string, unknown>;
  for (const event of (json["events"] ?? []) as Array<Record<string, Record<string, unknown> | undefined>>) {
    for (const kv of [event["kv"], event["prevKv"]]) if (kv?.["value"] !== undefined) kv["value"] = `${String(kv["value"]).length} base64 characters`;
  }
  const header = json["header"] as Record<string, unknown> | undefined;
  if (header !== undefined) for (const field of ["clusterId", "memberId", "raftTerm"]) delete header[field];
  return json;
}

async function createWatch(stream: RecordedStream, request: Parameters<RecordedStream["watch"]>[0]): Promise<void> {
  const before = stream.responses.length;
  stream.watch(request);
  await stream.waitFor((responses) => responses.slice(before).some((response) => response.created), "created");
}

/** Two txns of large puts, then one delete of them all: the delete's events with previous values exceed one message. */
async function writeLargeRevisions(target: Target, prefix: string): Promise<void> {
  for (let txn = 0; txn < 2; txn++) {
    const success = Array.from({ length: keysPerTxn }, (_, index) => ({
      request: { case: "requestPut" as const, value: { key: Buffer.from(`${prefix}${txn}-${index}`), value: Buffer.alloc(valueBytes, 97 + index) } },
    }));
    assert.ok((await target.kv.kv.call("txn", rpc.TxnRequestSchema, { success }, rpc.TxnResponseSchema)).ok);
  }
  assert.ok((await target.kv.kv.call("deleteRange", rpc.DeleteRangeRequestSchema, { key: Buffer.from(prefix), rangeEnd: prefixEnd(prefix) })).ok);
}

describe("watch options against etcd 3.4", () => {
  test("fragment: a revision larger than the request limit is split only for watchers that ask, as etcd splits it", async () => {
    const prefix = "frag/";
    const results = await Promise.all(
      targets.map(async (target) => {
        const stream = target.watch.open();
        const range = { key: Buffer.from(prefix), rangeEnd: prefixEnd(prefix) };
        await createWatch(stream, { ...range, prevKv: true, fragment: true, watchId: 1n });
        await createWatch(stream, { ...range, prevKv: true, watchId: 2n });
        await createWatch(stream, { ...range, fragment: true, watchId: 3n });
        await writeLargeRevisions(target, prefix);
        const deletes = 2 * keysPerTxn;
        for (const id of [1n, 2n, 3n]) {
          await stream.waitFor((responses) => responsesOf(responses, id).flatMap((response) => response.events).length === 2 * keysPerTxn + deletes, `events of watcher ${id}`);
        }
        return stream.responses;
      }),
    );
    const [ours, reference] = results as [rpc.WatchResponse[], rpc.WatchResponse[]];
    for (const id of [1n, 2n, 3n]) {
      assert.deepEqual(responsesOf(ours, id).map(comparable), responsesOf(reference, id).map(comparable), `watcher ${id}`);
      assert.deepEqual(checkStream(responsesOf(ours, id)), [], `watcher ${id} stream properties`);
    }
    assert.ok(responsesOf(ours, 1n).some((response) => response.fragment), "the fragmenting watcher got fragments");
    assert.ok(!responsesOf(ours, 2n).some((response) => response.fragment), "the other did not");
  });

  test("progress_notify: an idle watcher gets progress notifications at the current revision, as etcd sends them", async () => {
    const results = await Promise.all(
      targets.map(async (target) => {
        const stream = target.watch.open();
        await createWatch(stream, { key: Buffer.from("idle"), progressNotify: true });
        await createWatch(stream, { key: Buffer.from("idle2") });
        const progress = (responses: rpc.WatchResponse[]) => responses.filter((response) => !response.created && response.events.length === 0);
        await stream.waitFor((responses) => progress(responses).length >= 2, "two progress notifications");
        return progress(stream.responses).slice(0, 2);
      }),
    );
    const [ours, reference] = results as [rpc.WatchResponse[], rpc.WatchResponse[]];
    assert.deepEqual(ours.map(comparable), reference.map(comparable));
    assert.ok(ours.every((response) => response.watchId === 0n), "only the watcher that asked is notified");
  });
});
