import assert from "node:assert/strict";
import { test } from "node:test";
import { BoundedQueue } from "../../src/transport/bounded-queue.js";
import { Backoff, defaultTransportLimits, resolveLimits } from "../../src/transport/index.js";
import { formatId, parseId } from "../../src/transport/protocol.js";

test("backoff doubles from the minimum to the maximum and resets", () => {
  const backoff = new Backoff(100, 1000);
  assert.deepEqual(Array.from({ length: 6 }, () => backoff.nextDelayMs()), [100, 200, 400, 800, 1000, 1000]);
  backoff.reset();
  assert.equal(backoff.nextDelayMs(), 100);
  assert.throws(() => new Backoff(0, 10), RangeError);
  assert.throws(() => new Backoff(20, 10), RangeError);
});

test("the bounded queue refuses past its capacity and keeps order across compaction", () => {
  const queue = new BoundedQueue<number>(3000);
  for (let value = 0; value < 3000; value++) assert.equal(queue.push(value), true);
  assert.equal(queue.push(3000), false);
  assert.equal(queue.length, 3000);
  for (let value = 0; value < 2000; value++) assert.equal(queue.shift(), value);
  for (let value = 3000; value < 5000; value++) assert.equal(queue.push(value), true);
  assert.equal(queue.push(5000), false);
  for (let value = 2000; value < 5000; value++) assert.equal(queue.shift(), value);
  assert.equal(queue.shift(), undefined);
  assert.equal(queue.length, 0);
});

test("ids travel as hex and malformed ones are refused", () => {
  assert.equal(formatId(0xffff_ffff_ffff_ffffn), "ffffffffffffffff");
  assert.equal(parseId("ffffffffffffffff"), 0xffff_ffff_ffff_ffffn);
  assert.equal(parseId("8e9e05c52164694d"), 0x8e9e05c52164694dn);
  for (const bad of [undefined, "", "xyz", "0x12", "1ffffffffffffffff", ["1"]]) assert.equal(parseId(bad), undefined, String(bad));
});

test("limits: defaults named, overrides checked", () => {
  assert.equal(defaultTransportLimits.queuedMessagesPerPeerMax, 4096);
  assert.equal(resolveLimits({ queuedMessagesPerPeerMax: 8 }).queuedMessagesPerPeerMax, 8);
  assert.throws(() => resolveLimits({ queuedMessagesPerPeerMax: 0 }), RangeError);
  assert.throws(() => resolveLimits({ reconnectDelayMsMin: 10, reconnectDelayMsMax: 5 }), RangeError);
});

test("a peer server grants the configured receive window to each stream and to the connection", { timeout: 5000 }, async () => {
  const { createPeerServer } = await import("../../src/transport/connection.js");
  const http2 = await import("node:http2");
  const windowBytes = 1024 * 1024;
  const server = createPeerServer(new URL("http://127.0.0.1:0"), windowBytes, undefined, {
    session: () => {},
    stream: (stream) => {
      stream.respond({ ":status": 200 });
      stream.end();
    },
    tlsClientError: () => {},
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const session = http2.connect(`http://127.0.0.1:${(server.address() as import("node:net").AddressInfo).port}`);
  try {
    const stream = session.request({ ":path": "/" });
    stream.resume();
    await new Promise((resolve) => stream.on("close", resolve));
    assert.equal(session.remoteSettings.initialWindowSize, windowBytes);
    assert.equal(session.state.remoteWindowSize, windowBytes);
  } finally {
    session.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
});
