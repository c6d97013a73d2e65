import assert from "node:assert/strict";
import http2 from "node:http2";
import { test } from "node:test";
import { protocol } from "../../src/transport/index.js";
import { FreezingProxy } from "./freezing-proxy.js";
import { connectAll, numbered, range, startMember, stopAll, unusedPort, waitFor, type TestMember } from "./harness.js";

const indexes = (member: TestMember, from: bigint) => member.received.filter((m) => m.from === from).map((m) => m.index);

test("two members exchange messages, in order, both ways", { timeout: 10_000 }, async () => {
  const members: TestMember[] = [];
  try {
    members.push(await startMember(1n), await startMember(2n));
    const [a, b] = members as [TestMember, TestMember];
    connectAll(members);
    a.transport.send(range(1, 500).map((index) => numbered(1n, 2n, index)));
    b.transport.send(range(1, 300).map((index) => numbered(2n, 1n, index)));
    await waitFor(() => b.received.length === 500 && a.received.length === 300, "all messages");
    assert.deepEqual(indexes(b, 1n), range(1, 500));
    assert.deepEqual(indexes(a, 2n), range(1, 300));
    assert.deepEqual(b.received[41], numbered(1n, 2n, 42));
    assert.ok(b.received.every((m) => m.to === 2n));
    assert.equal(a.transport.peerStatus(2n)?.connected, true);
    assert.equal(a.transport.peerStatus(2n)?.droppedMessages, 0);
  } finally {
    await stopAll(members);
  }
});

test("three members: every ordered pair delivers its messages in order", { timeout: 10_000 }, async () => {
  const members: TestMember[] = [];
  try {
    for (const id of [1n, 2n, 3n]) members.push(await startMember(id));
    connectAll(members);
    for (let round = 1; round <= 200; round++) {
      for (const sender of members) {
        const from = sender.transport.memberId;
        sender.transport.send(members.filter((other) => other !== sender).map((other) => numbered(from, other.transport.memberId, round)));
      }
    }
    await waitFor(() => members.every((member) => member.received.length === 400), "400 messages at each member");
    for (const receiver of members) {
      for (const sender of members) {
        if (sender !== receiver) assert.deepEqual(indexes(receiver, sender.transport.memberId), range(1, 200));
      }
    }
  } finally {
    await stopAll(members);
  }
});

test("a peer that is down: messages past the queue bound are dropped and the peer reported unreachable", { timeout: 10_000 }, async () => {
  let a: TestMember | undefined;
  try {
    a = await startMember(1n, { limits: { queuedMessagesPerPeerMax: 8 } });
    a.transport.addPeer(2n, [`http://127.0.0.1:${await unusedPort()}`]);
    await waitFor(() => a!.unreachable.includes(2n), "unreachable after a refused connection");
    a.transport.send(range(1, 20).map((index) => numbered(1n, 2n, index)));
    assert.deepEqual(a.transport.peerStatus(2n), { connected: false, activeSinceMs: undefined, queuedMessages: 8, droppedMessages: 12, sentBytes: 0, snapshotsInFlight: 0 });
    const before = a.unreachable.length;
    await waitFor(() => a!.unreachable.length >= before + 12, "one report per dropped message");
    assert.ok(a.unreachable.every((id) => id === 2n));
    // Messages to a member that is not a peer at all are dropped quietly.
    a.transport.send([numbered(1n, 9n, 1)]);
    assert.equal(a.transport.peerStatus(9n), undefined);
  } finally {
    await stopAll([a]);
  }
});

test("a peer restarting on the same port: the stream reconnects and delivers again, in order", { timeout: 15_000 }, async () => {
  let a: TestMember | undefined;
  let b: TestMember | undefined;
  try {
    a = await startMember(1n, { limits: { queuedMessagesPerPeerMax: 8 } });
    b = await startMember(2n);
    const port = Number(new URL(b.url).port);
    a.transport.addPeer(2n, [b.url]);
    a.transport.send(range(1, 5).map((index) => numbered(1n, 2n, index)));
    await waitFor(() => b!.received.length === 5, "messages before the restart");

    await b.transport.stop();
    await waitFor(() => a!.transport.peerStatus(2n)?.connected === false && a!.unreachable.includes(2n), "the loss noticed");
    a.transport.send(range(6, 20).map((index) => numbered(1n, 2n, index)));
    assert.equal(a.transport.peerStatus(2n)?.queuedMessages, 8);
    assert.equal(a.transport.peerStatus(2n)?.droppedMessages, 12);

    b = await startMember(2n, { port });
    await waitFor(() => b!.received.length === 8, "the queued messages after the restart");
    a.transport.send(range(100, 10).map((index) => numbered(1n, 2n, index)));
    await waitFor(() => b!.received.length === 18, "new messages after the restart");
    assert.deepEqual(indexes(b, 1n), [...range(6, 8), ...range(100, 10)]);
    assert.equal(a.transport.peerStatus(2n)?.connected, true);
    assert.ok(a.logger.lines.some((line) => line.level === "warn" && line.message.startsWith("peer became inactive")));
  } finally {
    await stopAll([a, b]);
  }
});

test("a wrong cluster id is refused with 412 and a clear reason, and nothing is delivered", { timeout: 10_000 }, async () => {
  let a: TestMember | undefined;
  let b: TestMember | undefined;
  try {
    a = await startMember(1n, { clusterId: 0xaaan });
    b = await startMember(2n, { clusterId: 0xbbbn });
    a.transport.addPeer(2n, [b.url]);
    a.transport.send([numbered(1n, 2n, 1)]);
    await waitFor(() => a!.logger.lines.some((line) => line.level === "error"), "the refusal logged by the sender");
    const refusal = a.logger.lines.find((line) => line.level === "error")!;
    assert.equal(refusal.message, "remote peer refused the message stream");
    assert.match(String(refusal.fields.error), /status 412: cluster ID mismatch: local bbb, remote aaa/);
    await waitFor(() => a!.unreachable.includes(2n), "unreachable reported");
    assert.ok(b.logger.lines.some((line) => line.message === "refused a request from a peer" && /cluster ID mismatch/.test(String(line.fields.reason))));
    assert.equal(a.transport.peerStatus(2n)?.connected, false);
    assert.equal(b.received.length, 0);

    // The same refusal, seen on the wire.
    const session = http2.connect(b.url);
    try {
      const stream = session.request(protocol.requestHeaders(protocol.messageStreamPath, 1n, 2n, 0xaaan));
      const headers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
        stream.on("response", resolve);
        stream.on("error", reject);
      });
      stream.resume();
      assert.equal(headers[":status"], 412);
      assert.equal(headers[protocol.headerError], "cluster ID mismatch: local bbb, remote aaa");
      stream.close();
    } finally {
      session.destroy();
    }
  } finally {
    await stopAll([a, b]);
  }
});

test("a stream for another member, a malformed request and a removed sender are refused", { timeout: 10_000 }, async () => {
  let b: TestMember | undefined;
  const session = { current: undefined as http2.ClientHttp2Session | undefined };
  try {
    b = await startMember(2n);
    b.transport.addPeer(3n, [`http://127.0.0.1:${await unusedPort()}`]);
    b.transport.removePeer(3n);
    session.current = http2.connect(b.url);
    const ask = async (headers: Record<string, string>) => {
      const stream = session.current!.request(headers);
      const response = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
        stream.on("response", resolve);
        stream.on("error", reject);
      });
      stream.resume();
      stream.close();
      return [response[":status"], response[protocol.headerError]];
    };
    const forMember = (to: bigint, from = 1n) => protocol.requestHeaders(protocol.messageStreamPath, from, to, 0xc1n);
    assert.deepEqual(await ask(forMember(5n)), [412, "member ID mismatch: this member is 2, the request is for 5"]);
    assert.deepEqual(await ask(forMember(2n, 3n)), [410, "member 3 has been permanently removed from the cluster"]);
    assert.deepEqual(await ask({ ...forMember(2n), [protocol.headerFrom]: "not-hex" }), [400, "missing or malformed x-tetcd-from, x-tetcd-to or x-tetcd-cluster-id header"]);
    assert.deepEqual(await ask({ ...forMember(2n), ":path": "/elsewhere" }), [404, "no peer endpoint POST /elsewhere"]);
    assert.equal(b.received.length, 0);
  } finally {
    session.current?.destroy();
    await stopAll([b]);
  }
});

test("a frame with a message from someone else closes the stream and delivers nothing", { timeout: 10_000 }, async () => {
  let b: TestMember | undefined;
  const session = { current: undefined as http2.ClientHttp2Session | undefined };
  try {
    b = await startMember(2n);
    session.current = http2.connect(b.url);
    const stream = session.current.request(protocol.requestHeaders(protocol.messageStreamPath, 1n, 2n, 0xc1n), { endStream: false });
    const { encodeFrame } = await import("../../src/transport/index.js");
    const { encodeMessage } = await import("../../src/raft/index.js");
    stream.write(encodeFrame(encodeMessage(numbered(1n, 2n, 1))));
    stream.write(encodeFrame(encodeMessage(numbered(7n, 2n, 2))));
    stream.write(encodeFrame(encodeMessage(numbered(1n, 2n, 3))));
    stream.resume();
    stream.on("error", () => {});
    await new Promise<void>((resolve) => stream.on("close", resolve));
    assert.deepEqual(indexes(b, 1n), [1]);
    assert.equal(b.received.length, 1);
    assert.ok(b.logger.lines.some((line) => line.message === "closed a bad message stream from a peer" && /message from 7/.test(String(line.fields.reason))));
  } finally {
    session.current?.destroy();
    await stopAll([b]);
  }
});

test("updatePeer moves the stream to the peer's new URLs", { timeout: 10_000 }, async () => {
  const members: TestMember[] = [];
  try {
    members.push(await startMember(1n), await startMember(2n));
    const [a, b] = members as [TestMember, TestMember];
    a.transport.addPeer(2n, [`http://127.0.0.1:${await unusedPort()}`]);
    await waitFor(() => a.unreachable.includes(2n), "unreachable at the old URL");
    a.transport.updatePeer(2n, [b.url]);
    await waitFor(() => a.transport.peerStatus(2n)?.connected === true, "the stream at the new URL");
    a.transport.send(range(1, 10).map((index) => numbered(1n, 2n, index)));
    await waitFor(() => b.received.length === 10, "messages at the new URL");
    assert.deepEqual(indexes(b, 1n), range(1, 10));
    assert.throws(() => a.transport.updatePeer(7n, [b.url]), RangeError);
    assert.throws(() => a.transport.addPeer(2n, [b.url]), RangeError);
  } finally {
    await stopAll(members);
  }
});

test("removePeer: the removed member's stream is closed and its reconnection refused with 410", { timeout: 10_000 }, async () => {
  const members: TestMember[] = [];
  try {
    members.push(await startMember(1n), await startMember(2n));
    const [a, b] = members as [TestMember, TestMember];
    connectAll(members);
    a.transport.send([numbered(1n, 2n, 1)]);
    await waitFor(() => b.received.length === 1, "a message before the removal");
    b.transport.removePeer(1n);
    assert.equal(b.transport.peerStatus(1n), undefined);
    await waitFor(
      () => a.logger.lines.some((line) => line.level === "error" && /status 410: member 1 has been permanently removed/.test(String(line.fields.error))),
      "the refusal of the removed member",
    );
    a.transport.send([numbered(1n, 2n, 2)]);
    b.transport.send([numbered(2n, 1n, 1)]);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(indexes(b, 1n), [1]);
    assert.equal(a.received.length, 0);
  } finally {
    await stopAll(members);
  }
});

test("a connection that goes silent (no reset) is noticed by an unanswered ping and replaced", { timeout: 10_000 }, async () => {
  const members: TestMember[] = [];
  let proxy: FreezingProxy | undefined;
  try {
    members.push(await startMember(1n, { limits: { pingIntervalMs: 20, pingTimeoutMs: 200 } }), await startMember(2n));
    const [a, b] = members as [TestMember, TestMember];
    proxy = new FreezingProxy(Number(new URL(b.url).port));
    a.transport.addPeer(2n, [await proxy.listen()]);
    a.transport.send(range(1, 5).map((index) => numbered(1n, 2n, index)));
    await waitFor(() => b.received.length === 5, "messages through the proxy");

    proxy.freeze();
    await waitFor(
      () => a.logger.lines.some((line) => line.message.startsWith("peer became inactive") && /ping not answered/.test(String(line.fields.reason))),
      "the silent connection noticed",
    );
    await waitFor(() => a.unreachable.includes(2n), "unreachable reported");
    assert.equal(a.transport.peerStatus(2n)?.connected, false);

    proxy.thaw();
    await waitFor(() => a.transport.peerStatus(2n)?.connected === true, "a new stream after the thaw");
    a.transport.send(range(6, 5).map((index) => numbered(1n, 2n, index)));
    await waitFor(() => indexes(b, 1n).includes(10), "messages after the thaw");
    assert.deepEqual(indexes(b, 1n), range(1, 10));
  } finally {
    await stopAll(members);
    await proxy?.close();
  }
});
