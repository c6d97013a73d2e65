import assert from "node:assert/strict";
import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
import { startEtcd, startTetcd, type ServerProcess } from "../support/processes.js";

/**
 * Fuzzed client input, sent to tetcd and to etcd 3.4 side by side: random
 * protobuf bodies for every unary method a client may call without changing
 * the cluster's membership, random JSON bodies for the `/v3` gateway, and
 * random bytes on the client port with and without the HTTP/2 preface.
 * Each gRPC answer must carry etcd's status code (and etcd's message, except
 * for the wording of a protobuf decoding error, which is Go's library's), each
 * gateway answer etcd's HTTP status and code; tetcd must never crash or hang,
 * and at the end both stores must hold the same keys at the same revisions.
 *
 * Replay a run with TETCD_FUZZ_SEED=<seed> (fast-check prints the seed of a failure).
 */
const seed = process.env["TETCD_FUZZ_SEED"] === undefined ? Date.now() % 2 ** 31 : Number(process.env["TETCD_FUZZ_SEED"]);
const callTimeoutMs = 5_000;

/** Methods fuzzed: every unary method of KV, Lease and Maintenance, and Cluster's MemberList (a member change would break quorum). */
const methods = [
  "/etcdserverpb.KV/Range",
  "/etcdserverpb.KV/Put",
  "/etcdserverpb.KV/DeleteRange",
  "/etcdserverpb.KV/Txn",
  "/etcdserverpb.KV/Compact",
  "/etcdserverpb.Lease/LeaseGrant",
  "/etcdserverpb.Lease/LeaseRevoke",
  "/etcdserverpb.Lease/LeaseTimeToLive",
  "/etcdserverpb.Lease/LeaseLeases",
  "/etcdserverpb.Maintenance/Status",
  "/etcdserverpb.Maintenance/HashKV",
  "/etcdserverpb.Cluster/MemberList",
];

const gatewayPaths = ["kv/range", "kv/put", "kv/deleterange", "kv/txn", "kv/compaction", "lease/grant", "lease/revoke", "lease/timetolive", "lease/leases", "maintenance/status", "cluster/member/list", "kv/nothing"];

interface GrpcAnswer {
  code: string;
  message: string;
}

/** One unary call with a raw body; `compressed` sets the frame's compressed flag. */
function rawCall(session: http2.ClientHttp2Session, path: string, body: Uint8Array, compressed: boolean): Promise<GrpcAnswer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers" });
    const frame = Buffer.alloc(5 + body.length);
    frame[0] = compressed ? 1 : 0;
    frame.writeUInt32BE(body.length, 1);
    Buffer.from(body).copy(frame, 5);
    const answer: GrpcAnswer = { code: "missing", message: "" };
    const read = (headers: http2.IncomingHttpHeaders): void => {
      if (headers["grpc-status"] === undefined) return;
      answer.code = String(headers["grpc-status"]);
      answer.message = decodeURIComponent(String(headers["grpc-message"] ?? ""));
    };
    stream.on("response", read);
    stream.on("trailers", read);
    stream.on("data", () => undefined);
    stream.on("error", () => undefined);
    stream.setTimeout(callTimeoutMs, () => {
      stream.close();
      reject(new Error(`${path}: no answer within ${callTimeoutMs} ms`));
    });
    stream.on("close", () => resolve(answer));
    stream.end(frame);
  });
}

function post(endpoint: string, path: string, body: string): Promise<{ status: number; code: unknown }> {
  return new Promise((resolve, reject) => {
    const [host, port] = endpoint.split(":");
    const request = http.request({ host, port: Number(port), path, method: "POST", headers: { "content-type": "application/json" }, timeout: callTimeoutMs }, (response) => {
      let text = "";
      response.on("data", (chunk: Buffer) => (text += chunk.toString()));
      response.on("end", () => {
        let code: unknown;
        try {
          code = (JSON.parse(text) as { code?: unknown }).code;
        } catch {
          code = "not JSON";
        }
        resolve({ status: response.statusCode ?? 0, code });
      });
    });
    request.on("timeout", () => request.destroy(new Error(`${path}: no answer within ${callTimeoutMs} ms`)));
    request.on("error", reject);
    request.end(body);
  });
}

/** Sends `bytes` on a new connection to the client port, then closes it after the server had a moment to read. */
function sendRaw(endpoint: string, bytes: Uint8Array): Promise<void> {
  return new Promise((resolve) => {
    const [host, port] = endpoint.split(":");
    const socket = net.connect(Number(port), host!, () => {
      socket.write(bytes);
      setTimeout(() => socket.destroy(), 20);
    });
    socket.on("data", () => undefined);
    socket.on("error", () => undefined);
    socket.on("close", () => resolve());
  });
}

/** Every key with its value and revisions, read through the gateway (serializable, so no leader round). */
async function everything(endpoint: string): Promise<unknown> {
  const [host, port] = endpoint.split(":");
  return new Promise((resolve, reject) => {
    const request = http.request({ host, port: Number(port), path: "/v3/kv/range", method: "POST", timeout: callTimeoutMs }, (response) => {
      let text = "";
      response.on("data", (chunk: Buffer) => (text += chunk.toString()));
      response.on("end", () => {
        const parsed = JSON.parse(text) as { kvs?: unknown[]; count?: string };
        resolve({ kvs: parsed.kvs ?? [], count: parsed.count });
      });
    });
    request.on("error", reject);
    request.end(JSON.stringify({ key: "AA==", range_end: "AA==", serializable: true }));
  });
}

/** The gRPC status message without a protobuf decoding error's detail, which is worded by each side's protobuf library. */
function comparableMessage(answer: GrpcAnswer): string {
  return answer.message.startsWith("grpc: error unmarshalling request:") ? "grpc: error unmarshalling request: <detail>" : answer.message;
}

describe(`client input fuzzed against tetcd and etcd 3.4 (seed ${seed})`, { timeout: 300_000 }, () => {
  let etcd: ServerProcess;
  let tetcd: ServerProcess;
  let etcdSession: http2.ClientHttp2Session;
  let tetcdSession: http2.ClientHttp2Session;
  before(async () => {
    [etcd, tetcd] = await Promise.all([startEtcd(), startTetcd()]);
    etcdSession = http2.connect(`http://${etcd.endpoint}`);
    tetcdSession = http2.connect(`http://${tetcd.endpoint}`);
  });
  after(async () => {
    etcdSession?.close();
    tetcdSession?.close();
    await Promise.all([etcd?.stop(), tetcd?.stop()]);
  });

  test("random protobuf bodies on every unary method: etcd's status codes and messages", async () => {
    let calls = 0;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...methods), fc.uint8Array({ maxLength: 48 }), fc.boolean(), async (method, body, compressed) => {
        const [expected, actual] = await Promise.all([rawCall(etcdSession, method, body, compressed), rawCall(tetcdSession, method, body, compressed)]);
        calls++;
        assert.equal(actual.code, expected.code, `${method} ${Buffer.from(body).toString("hex")}: ${JSON.stringify(expected)} vs ${JSON.stringify(actual)}`);
        assert.equal(comparableMessage(actual), comparableMessage(expected), `${method} ${Buffer.from(body).toString("hex")}`);
      }),
      { seed, numRuns: 600, endOnFailure: true },
    );
    assert.equal(calls, 600);
  });

  test("random JSON bodies on the /v3 gateway: etcd's HTTP status and code", async () => {
    const bodies = fc.oneof(
      fc.json(),
      fc.string(),
      fc.record({ key: fc.base64String(), range_end: fc.option(fc.base64String()), limit: fc.oneof(fc.integer(), fc.string()), value: fc.base64String(), lease: fc.oneof(fc.integer(), fc.constant("-1")) }, { requiredKeys: [] }).map((value) => JSON.stringify(value)),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...gatewayPaths), bodies, async (path, body) => {
        const [expected, actual] = await Promise.all([post(etcd.endpoint, `/v3/${path}`, body), post(tetcd.endpoint, `/v3/${path}`, body)]);
        assert.deepEqual(actual, expected, `POST /v3/${path} ${body}`);
      }),
      { seed, numRuns: 400, endOnFailure: true },
    );
  });

  test("random bytes on the client port, with and without the HTTP/2 preface: tetcd stays up", async () => {
    const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.uint8Array({ minLength: 1, maxLength: 256 }), async (withPreface, bytes) => {
        await sendRaw(tetcd.endpoint, withPreface ? Buffer.concat([preface, bytes]) : bytes);
      }),
      { seed, numRuns: 200 },
    );
    const answer = await rawCall(tetcdSession, "/etcdserverpb.Maintenance/Status", new Uint8Array(), false);
    assert.equal(answer.code, "0", "tetcd still answers after the garbage");
    assert.equal(tetcd.child.exitCode, null);
  });

  test("afterwards both stores hold the same keys, values and revisions", async () => {
    assert.deepEqual(await everything(tetcd.endpoint), await everything(etcd.endpoint));
  });
});
