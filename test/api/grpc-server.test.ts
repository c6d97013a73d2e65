import assert from "node:assert/strict";
import * as http2 from "node:http2";
import { describe, test } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { serviceDefinition, unary } from "../../src/api/grpc.js";
import { encodeGrpcMessage, FrameReader, frameMessage } from "../../src/api/grpc-frames.js";
import { GrpcServer, type ServerCall } from "../../src/api/grpc-server.js";
import { KV, Lease, Watch } from "../../src/gen/etcdserverpb/rpc_pb.js";
import * as rpc from "../../src/gen/etcdserverpb/rpc_pb.js";
import { EtcdError, GrpcCode } from "../../src/server/errors.js";
import { ServiceClient } from "../support/client.js";
import { create } from "@bufbuild/protobuf";

describe("gRPC frames", () => {
  test("messages come out whole wherever the input is split", () => {
    const messages = [Buffer.from("a"), Buffer.alloc(0), Buffer.alloc(300, 7), Buffer.from("last")];
    const stream = Buffer.concat(messages.map(frameMessage));
    for (let first = 0; first <= stream.length; first++) {
      for (const second of [first, Math.min(stream.length, first + 3), stream.length]) {
        const reader = new FrameReader(1024);
        const events = [stream.subarray(0, first), stream.subarray(first, second), stream.subarray(second)].flatMap((chunk) => reader.push(chunk));
        assert.deepEqual(
          events.map((event) => (event.kind === "message" ? Buffer.from(event.message).toString("hex") : event.kind)),
          messages.map((message) => message.toString("hex")),
          `split at ${first} and ${second}`,
        );
        assert.equal(reader.pending, false);
      }
    }
  });

  test("a message over the limit and a compressed message are refused, not read", () => {
    assert.deepEqual(new FrameReader(10).push(frameMessage(Buffer.alloc(11))), [{ kind: "too-large", length: 11 }]);
    const compressed = frameMessage(Buffer.from("x"));
    compressed[0] = 1;
    assert.deepEqual(new FrameReader(10).push(compressed), [{ kind: "compressed" }]);
  });

  test("grpc-message is percent-encoded", () => {
    assert.equal(encodeGrpcMessage("etcdserver: key not found"), "etcdserver: key not found");
    assert.equal(encodeGrpcMessage("100% é\n"), "100%25 %C3%A9%0A");
  });
});

describe("gRPC server", { timeout: 30_000 }, () => {
  async function withServer(body: (endpoint: string) => Promise<void>): Promise<void> {
    const server = new GrpcServer({ maxReceiveMessageBytes: 64, maxConcurrentStreams: 100 });
    server.addService(serviceDefinition(KV), {
      range: unary(async (request: rpc.RangeRequest) => {
        if (Buffer.from(request.key).toString() === "missing") throw new EtcdError(GrpcCode.InvalidArgument, "etcdserver: key not found");
        return create(rpc.RangeResponseSchema, { count: BigInt(request.key.length) });
      }),
    });
    server.addService(serviceDefinition(Watch), {
      watch: ((call: ServerCall) => {
        call.on("data", (request: rpc.WatchRequest) => {
          if (request.requestUnion.case === "cancelRequest") call.end();
          else call.write(create(rpc.WatchResponseSchema, { watchId: 7n, created: true }));
        });
      }) as unknown as grpc.handleBidiStreamingCall<unknown, unknown>,
    });
    const port = await server.listen("127.0.0.1", 0);
    try {
      await body(`127.0.0.1:${port}`);
    } finally {
      await server.close();
    }
  }

  test("unary calls answer, and errors carry etcd's code and message", async () => {
    await withServer(async (endpoint) => {
      const client = new ServiceClient(KV, endpoint);
      try {
        const ok = await client.call("range", rpc.RangeRequestSchema, { key: Buffer.from("abc") }, rpc.RangeResponseSchema);
        assert.ok(ok.ok && ok.response.count === 3n);
        const failed = await client.call("range", rpc.RangeRequestSchema, { key: Buffer.from("missing") });
        assert.deepEqual(failed, { ok: false, code: 3, message: "etcdserver: key not found" });
        const large = await client.call("range", rpc.RangeRequestSchema, { key: Buffer.alloc(100) });
        assert.deepEqual(large, { ok: false, code: 8, message: "grpc: received message larger than max (102 vs. 64)" });
        const unknown = await client.call("put", rpc.PutRequestSchema, { key: Buffer.from("k") });
        assert.deepEqual(unknown, { ok: false, code: 12, message: "unknown method Put for service etcdserverpb.KV" });
        const lease = new ServiceClient(Lease, endpoint);
        try {
          const unknownService = await lease.call("leaseLeases", rpc.LeaseLeasesRequestSchema, {});
          assert.deepEqual(unknownService, { ok: false, code: 12, message: "unknown service etcdserverpb.Lease" });
        } finally {
          lease.close();
        }
      } finally {
        client.close();
      }
    });
  });

  test("a bidirectional stream answers each request and ends with status OK", async () => {
    await withServer(async (endpoint) => {
      const Client = grpc.makeGenericClientConstructor(serviceDefinition(Watch), "Watch");
      const client = new Client(endpoint, grpc.credentials.createInsecure()) as unknown as grpc.Client & { watch(): grpc.ClientDuplexStream<unknown, rpc.WatchResponse> };
      try {
        const stream = client.watch();
        const received: bigint[] = [];
        const ended = new Promise<grpc.StatusObject>((resolve) => stream.on("status", resolve));
        stream.on("data", (response: rpc.WatchResponse) => received.push(response.watchId));
        stream.write(create(rpc.WatchRequestSchema, { requestUnion: { case: "createRequest", value: { key: Buffer.from("a") } } }));
        stream.write(create(rpc.WatchRequestSchema, { requestUnion: { case: "createRequest", value: { key: Buffer.from("b") } } }));
        stream.write(create(rpc.WatchRequestSchema, { requestUnion: { case: "cancelRequest", value: { watchId: 7n } } }));
        const status = await ended;
        assert.equal(status.code, 0);
        assert.deepEqual(received, [7n, 7n]);
      } finally {
        client.close();
      }
    });
  });

  test("a request that is not gRPC is refused", async () => {
    await withServer(async (endpoint) => {
      const session = http2.connect(`http://${endpoint}`);
      try {
        const status = await new Promise<number>((resolve, reject) => {
          const request = session.request({ ":method": "POST", ":path": "/etcdserverpb.KV/Range", "content-type": "text/plain" });
          request.on("response", (headers) => resolve(Number(headers[":status"])));
          request.on("error", reject);
          request.end();
        });
        assert.equal(status, 415);
      } finally {
        session.close();
      }
    });
  });
});
