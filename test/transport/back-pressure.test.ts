import assert from "node:assert/strict";
import { test } from "node:test";
import { numbered, range, startMember, stopAll, waitFor, type TestMember } from "./harness.js";
import { StalledPeer } from "./stalled-peer.js";

const queueMax = 256;

test("a flood to a peer that stopped reading: the queue stays at its bound, the rest is dropped and reported", { timeout: 15_000 }, async () => {
  const peer = new StalledPeer(true);
  let a: TestMember | undefined;
  try {
    const url = await peer.listen();
    a = await startMember(1n, { limits: { queuedMessagesPerPeerMax: queueMax } });
    a.transport.addPeer(2n, [url]);
    await waitFor(() => a!.transport.peerStatus(2n)?.connected === true, "the message stream");
    let sent = 0;
    for (let round = 0; round < 20; round++) {
      a.transport.send(range(sent + 1, 1000).map((index) => numbered(1n, 2n, index, 1024)));
      sent += 1000;
      // Let the stream write what flow control allows, then check the bound.
      await new Promise((resolve) => setTimeout(resolve, 10));
      const status = a.transport.peerStatus(2n)!;
      assert.ok(status.queuedMessages <= queueMax, `round ${round}: ${status.queuedMessages} queued`);
    }
    const status = a.transport.peerStatus(2n)!;
    assert.equal(status.connected, true);
    assert.equal(status.queuedMessages, queueMax);
    // What left the queue is bounded by the receive window the stalled peer granted (Node's default,
    // 64 KiB) and the stream's write buffer (16 KiB): about 1 KiB a message.
    const written = sent - status.queuedMessages - status.droppedMessages;
    assert.ok(written >= 0 && written <= 64 + 16 + 8, `${written} messages left the queue`);
    await waitFor(() => a!.unreachable.length === status.droppedMessages, "one unreachable report per dropped message");
    assert.ok(a.unreachable.every((id) => id === 2n));
  } finally {
    await stopAll([a]);
    await peer.close();
  }
});

test("a peer that catches up receives every queued message, in order, after the drops", { timeout: 15_000 }, async () => {
  const members: TestMember[] = [];
  try {
    members.push(await startMember(1n, { limits: { queuedMessagesPerPeerMax: queueMax } }), await startMember(2n));
    const [a, b] = members as [TestMember, TestMember];
    a.transport.addPeer(2n, [b.url]);
    await waitFor(() => a.transport.peerStatus(2n)?.connected === true, "the message stream");
    // One synchronous burst: far more than the stream buffer and the queue hold.
    a.transport.send(range(1, 5000).map((index) => numbered(1n, 2n, index, 1024)));
    const { droppedMessages } = a.transport.peerStatus(2n)!;
    assert.ok(droppedMessages > 0);
    await waitFor(() => b.received.length === 5000 - droppedMessages, "every message not dropped");
    const indexes = b.received.map((m) => m.index);
    assert.deepEqual(indexes, [...indexes].sort((x, y) => x - y));
    assert.equal(indexes[0], 1);
    assert.equal(a.transport.peerStatus(2n)?.queuedMessages, 0);
  } finally {
    await stopAll(members);
  }
});
