import assert from "node:assert/strict";
import { test } from "node:test";
import { emptyConfState, message, MessageType, type Message } from "../../src/raft/index.js";
import { numbered, range, startMember, stopAll, unusedPort, waitFor, type TestMember } from "./harness.js";
import { StalledPeer } from "./stalled-peer.js";

function snapshotMessage(from: bigint, to: bigint, dataBytes: number): Message {
  const data = new Uint8Array(dataBytes);
  for (let index = 0; index < data.length; index += 4096) data[index] = (index / 4096) & 0xff;
  data[data.length - 1] = 0x5a;
  const confState = { ...emptyConfState(), voters: [from, to] };
  return message({ type: MessageType.MsgSnap, from, to, term: 3, snapshot: { data, metadata: { confState, index: 1000, term: 2 } } });
}

test("a large snapshot is delivered whole and reported finished; messages around it arrive in order", { timeout: 15_000 }, async () => {
  const members: TestMember[] = [];
  try {
    members.push(await startMember(1n), await startMember(2n));
    const [a, b] = members as [TestMember, TestMember];
    a.transport.addPeer(2n, [b.url]);
    const snapshot = snapshotMessage(1n, 2n, 16 * 1024 * 1024);
    a.transport.send([...range(1, 50).map((index) => numbered(1n, 2n, index)), snapshot, ...range(51, 50).map((index) => numbered(1n, 2n, index))]);
    await waitFor(() => a.snapshotStatuses.length === 1 && b.received.length === 101, "the snapshot and every message", 10_000);
    assert.deepEqual(a.snapshotStatuses, [{ peerId: 2n, status: "finish" }]);
    const received = b.received.find((m) => m.type === MessageType.MsgSnap)!;
    assert.deepEqual(received.snapshot!.metadata, snapshot.snapshot!.metadata);
    assert.ok(Buffer.from(received.snapshot!.data).equals(snapshot.snapshot!.data));
    assert.deepEqual(b.received.filter((m) => m.type === MessageType.MsgApp).map((m) => m.index), range(1, 100));
    assert.equal(a.transport.peerStatus(2n)?.snapshotsInFlight, 0);
  } finally {
    await stopAll(members);
  }
});

test("a snapshot the peer is slow to read does not hold up the message stream", { timeout: 15_000 }, async () => {
  const peer = new StalledPeer(false);
  let a: TestMember | undefined;
  try {
    const url = await peer.listen();
    a = await startMember(1n);
    a.transport.addPeer(2n, [url]);
    await waitFor(() => a!.transport.peerStatus(2n)?.connected === true, "the message stream");
    const snapshot = snapshotMessage(1n, 2n, 8 * 1024 * 1024);
    a.transport.send([snapshot]);
    a.transport.send(range(1, 200).map((index) => numbered(1n, 2n, index)));
    await waitFor(() => peer.messages.length === 200, "every message while the snapshot is held");
    assert.deepEqual(peer.messages.map((m) => m.index), range(1, 200));
    assert.equal(a.transport.peerStatus(2n)?.snapshotsInFlight, 1);
    assert.deepEqual(a.snapshotStatuses, []);
    // A second snapshot while one is in flight fails at once.
    a.transport.send([snapshotMessage(1n, 2n, 1024)]);
    await waitFor(() => a!.snapshotStatuses.length === 1, "the refusal of a second snapshot");
    assert.deepEqual(a.snapshotStatuses, [{ peerId: 2n, status: "failure" }]);

    peer.releaseSnapshots();
    await waitFor(() => a!.snapshotStatuses.length === 2, "the first snapshot acknowledged", 10_000);
    assert.deepEqual(a.snapshotStatuses[1], { peerId: 2n, status: "finish" });
    assert.equal(peer.snapshots.length, 1);
    assert.ok(Buffer.from(peer.snapshots[0]!.snapshot!.data).equals(snapshot.snapshot!.data));
  } finally {
    await stopAll([a]);
    await peer.close();
  }
});

test("a snapshot to a peer that is down is reported failed, and the peer unreachable", { timeout: 10_000 }, async () => {
  let a: TestMember | undefined;
  try {
    a = await startMember(1n);
    a.transport.addPeer(2n, [`http://127.0.0.1:${await unusedPort()}`]);
    a.transport.send([snapshotMessage(1n, 2n, 1024)]);
    await waitFor(() => a!.snapshotStatuses.length === 1, "the snapshot status");
    assert.deepEqual(a.snapshotStatuses, [{ peerId: 2n, status: "failure" }]);
    assert.ok(a.unreachable.includes(2n));
    assert.equal(a.transport.peerStatus(2n)?.snapshotsInFlight, 0);
  } finally {
    await stopAll([a]);
  }
});

test("a snapshot for a member of another cluster is refused and reported failed", { timeout: 10_000 }, async () => {
  const members: TestMember[] = [];
  try {
    members.push(await startMember(1n, { clusterId: 0xaan }), await startMember(2n, { clusterId: 0xbbn }));
    const [a, b] = members as [TestMember, TestMember];
    a.transport.addPeer(2n, [b.url]);
    a.transport.send([snapshotMessage(1n, 2n, 1024)]);
    await waitFor(() => a.snapshotStatuses.length === 1, "the snapshot status");
    assert.deepEqual(a.snapshotStatuses, [{ peerId: 2n, status: "failure" }]);
    assert.ok(a.logger.lines.some((line) => line.message === "failed to send database snapshot" && /412: cluster ID mismatch/.test(String(line.fields.error))));
    assert.equal(b.received.length, 0);
  } finally {
    await stopAll(members);
  }
});
