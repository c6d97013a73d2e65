import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startEtcd, startTetcd, type ServerProcess } from "../support/processes.js";

/**
 * The HTTP/1.1 side of the client port against etcd 3.4: /health, /version and
 * the /v3 JSON gateway, the same requests to both, status and JSON compared
 * (cluster and member ids, raft term and sizes aside).
 */
interface Exchange {
  path: string;
  body?: unknown;
  /** A body sent as written, for numbers JSON.stringify cannot write (64-bit ids as JSON numbers). */
  raw?: string;
  method?: string;
}

const b64 = (text: string): string => Buffer.from(text).toString("base64");

const exchanges: Exchange[] = [
  { path: "/health", method: "GET" },
  { path: "/version", method: "GET" },
  { path: "/v3/kv/put", body: { key: b64("foo"), value: b64("bar") } },
  { path: "/v3/kv/put", body: { key: b64("foo"), value: b64("baz"), prev_kv: true } },
  { path: "/v3/kv/range", body: { key: b64("foo") } },
  { path: "/v3beta/kv/range", body: { key: b64("f"), range_end: b64("g"), keys_only: true } },
  { path: "/v3/kv/range", body: { key: b64("foo"), revision: "100" } },
  { path: "/v3/kv/put", body: { value: b64("x") } },
  { path: "/v3/kv/txn", body: { compare: [{ key: b64("foo"), target: "VALUE", result: "EQUAL", value: b64("baz") }], success: [{ request_put: { key: b64("t"), value: b64("1") } }] } },
  { path: "/v3/kv/deleterange", body: { key: b64("t"), prev_kv: true } },
  { path: "/v3/kv/compaction", body: { revision: "2" } },
  { path: "/v3/kv/range", body: { key: b64("foo"), revision: "1" } },
  { path: "/v3/lease/grant", body: { TTL: "60", ID: "4242" } },
  { path: "/v3/lease/revoke", body: { ID: "4243" } },
  { path: "/v3/kv/lease/timetolive", body: { ID: "4242", keys: true } },
  // 64-bit ids as JSON numbers beyond 2^53, as some clients send them: read exactly, never through a double.
  { path: "/v3/lease/grant", raw: '{"TTL":60,"ID":5685691444039672149}' },
  { path: "/v3/kv/put", raw: '{"key":"bGVhc2Vk","value":"dg==","lease":5685691444039672149}' },
  { path: "/v3/kv/txn", raw: '{"success":[{"request_put":{"key":"bGVhc2VkMg==","value":"dg==","lease":5685691444039672149}}]}' },
  { path: "/v3/kv/range", raw: '{"key":"bGVhc2Vk","range_end":"bGVhc2Vl"}' },
  { path: "/v3/kv/lease/timetolive", raw: '{"ID":5685691444039672149,"keys":true}' },
  { path: "/v3/kv/put", raw: '{"key":"bGVhc2Vk","value":"dg==","lease":5685691444039672150}' },
  { path: "/v3/maintenance/alarm", body: {} },
  { path: "/v3/kv/range", method: "GET" },
  { path: "/v3/nothing/here", body: {} },
];

async function exchange(server: ServerProcess, step: Exchange): Promise<{ status: number; body: unknown }> {
  const init: RequestInit = { method: step.method ?? "POST" };
  if (step.body !== undefined) init.body = JSON.stringify(step.body);
  if (step.raw !== undefined) init.body = step.raw;
  const response = await fetch(`http://${server.endpoint}${step.path}`, init);
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Plain-text answers (404, 405) are compared as text.
  }
  return { status: response.status, body: mask(body) };
}

function mask(body: unknown): unknown {
  if (typeof body !== "object" || body === null) return body;
  const json = body as Record<string, unknown>;
  const header = json["header"] as Record<string, unknown> | undefined;
  if (header !== undefined) {
    delete header["cluster_id"];
    delete header["member_id"];
    delete header["raft_term"];
  }
  // A remaining TTL may tick down between the two calls; the granted TTL is compared.
  if ("grantedTTL" in json) delete json["TTL"];
  return json;
}

describe("HTTP gateway against etcd 3.4", { timeout: 60_000 }, () => {
  let tetcd: ServerProcess;
  let etcd: ServerProcess;
  before(async () => {
    [tetcd, etcd] = await Promise.all([startTetcd(), startEtcd()]);
  });
  after(async () => {
    await Promise.all([tetcd?.stop(), etcd?.stop()]);
  });
  for (const step of exchanges) {
    test(`${step.method ?? "POST"} ${step.path} ${step.raw ?? JSON.stringify(step.body ?? "")}`, async () => {
      const [ours, theirs] = await Promise.all([exchange(tetcd, step), exchange(etcd, step)]);
      assert.deepEqual(ours, theirs);
    });
  }
});
