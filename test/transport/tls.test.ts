import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import http2 from "node:http2";
import { after, before, test } from "node:test";
import { emptyConfState, message, MessageType } from "../../src/raft/index.js";
import { connectPeer, loadPeerTls, PeerTransport, TransportError, type PeerTlsOptions } from "../../src/transport/index.js";
import { connectAll, numbered, range, startMember, stopAll, waitFor, type TestMember } from "./harness.js";
import { TestPki } from "./tls-certs.js";

const pki = new TestPki();
/** Members 1 to 3 of the cluster, signed by its CA, with client certificate authentication. */
let members: PeerTlsOptions[] = [];
/** Signed by another CA, but trusting the cluster's: its server check passes, its client certificate does not. */
let rogue: PeerTlsOptions;
/** Signed by the cluster's CA, but trusting only the other CA: it refuses the cluster's server certificates. */
let distrustful: PeerTlsOptions;

before(() => {
  pki.authority("ca");
  pki.authority("other-ca");
  members = [pki.member("m1", "ca", true), pki.member("m2", "ca", true), pki.member("m3", "ca", true)];
  rogue = pki.member("rogue", "other-ca", true, "ca");
  distrustful = pki.member("distrustful", "ca", true, "other-ca");
});

after(() => pki.remove());

const httpsListen = { listenUrls: ["https://127.0.0.1:0"] };
const indexes = (member: TestMember, from: bigint) => member.received.filter((m) => m.from === from).map((m) => m.index);
const probeTimeoutMs = 3000;

/** Dials `url` with `options` and asks for an unknown path: the HTTP status, or the error that ended the connection. */
function probe(url: string, options: http2.SecureClientSessionOptions): Promise<number | Error> {
  return new Promise((resolve) => {
    const session = http2.connect(url, options);
    const done = (result: number | Error): void => {
      clearTimeout(timer);
      session.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done(new Error("no answer")), probeTimeoutMs);
    session.on("error", done);
    session.on("close", () => done(new Error("closed")));
    const stream = session.request({ ":path": "/no-such-endpoint" });
    stream.on("response", (headers) => done(Number(headers[":status"])));
    stream.on("error", done);
    stream.resume();
  });
}

/** Reads the PEM files of a member, as a raw HTTP/2 client would present them. */
function clientOptions(tls: PeerTlsOptions, withCertificate: boolean): http2.SecureClientSessionOptions {
  const ca = readFileSync(tls.trustedCaFile!);
  return withCertificate ? { ca, cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) } : { ca };
}

test("two members exchange messages both ways over https with mutual TLS", { timeout: 15_000 }, async () => {
  const started: TestMember[] = [];
  try {
    started.push(await startMember(1n, { ...httpsListen, tls: members[0] }), await startMember(2n, { ...httpsListen, tls: members[1] }));
    const [a, b] = started as [TestMember, TestMember];
    assert.match(a.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    connectAll(started);
    a.transport.send(range(1, 300).map((index) => numbered(1n, 2n, index)));
    b.transport.send(range(1, 200).map((index) => numbered(2n, 1n, index)));
    await waitFor(() => b.received.length === 300 && a.received.length === 200, "all messages");
    assert.deepEqual(indexes(b, 1n), range(1, 300));
    assert.deepEqual(indexes(a, 2n), range(1, 200));
    assert.equal(a.transport.peerStatus(2n)?.connected, true);
    assert.equal(b.transport.peerStatus(1n)?.connected, true);
    // The listener speaks TLS only: h2c on its port gets nowhere.
    assert.ok((await probe(a.url.replace("https:", "http:"), {})) instanceof Error);
  } finally {
    await stopAll(started);
  }
});

test("with client certificate authentication, a peer with no certificate or one from another CA is refused", { timeout: 20_000 }, async () => {
  const started: TestMember[] = [];
  try {
    started.push(await startMember(1n, { ...httpsListen, tls: members[0] }));
    const a = started[0]!;
    assert.equal(await probe(a.url, clientOptions(members[1]!, true)), 404, "a cluster member's certificate is accepted");
    const rejections = () => a.logger.lines.filter((line) => line.message === "rejected a peer connection in the TLS handshake").map((line) => String(line.fields["error"]));
    assert.ok((await probe(a.url, clientOptions(members[1]!, false))) instanceof Error, "no certificate");
    await waitFor(() => rejections().length === 1, "the refusal logged");
    assert.match(rejections()[0]!, /peer did not return a certificate/);
    assert.ok((await probe(a.url, clientOptions(rogue, true))) instanceof Error, "a certificate from another CA");
    await waitFor(() => rejections().length === 2, "the refusal logged");
    assert.match(rejections()[1]!, /UNABLE_TO_GET_ISSUER_CERT|SELF_SIGNED|UNABLE_TO_VERIFY/);

    // A whole transport with the other CA's certificate never gets a stream accepted.
    started.push(await startMember(2n, { ...httpsListen, tls: rogue }));
    const b = started[1]!;
    b.transport.addPeer(1n, [a.url]);
    b.transport.send([numbered(2n, 1n, 1)]);
    await waitFor(() => b.unreachable.filter((id) => id === 1n).length >= 2, "the member reported unreachable, twice");
    assert.equal(b.transport.peerStatus(1n)?.connected, false);
    assert.deepEqual(a.received, []);
    assert.ok(rejections().length > 2, "the member's connections are rejected too");
  } finally {
    await stopAll(started);
  }
});

test("a member refuses a server certificate its trusted CA did not sign", { timeout: 15_000 }, async () => {
  const started: TestMember[] = [];
  try {
    started.push(await startMember(1n, { ...httpsListen, tls: members[0] }), await startMember(2n, { ...httpsListen, tls: distrustful }));
    const [a, b] = started as [TestMember, TestMember];
    b.transport.addPeer(1n, [a.url]);
    await waitFor(() => b.unreachable.length >= 2, "the member reported unreachable, twice");
    assert.equal(b.transport.peerStatus(1n)?.connected, false);
    const warning = b.logger.lines.find((line) => line.message === "TLS handshake with peer failed");
    assert.ok(warning !== undefined, "the failure is a warning");
    assert.match(String(warning.fields["error"]), /certificate/i);
  } finally {
    await stopAll(started);
  }
});

test("as in etcd, a trusted CA file alone requires client certificates; without it, none is asked for", { timeout: 15_000 }, async () => {
  const started: TestMember[] = [];
  try {
    const caOnly = { ...members[0]!, clientCertAuth: false };
    const neither = { certFile: members[0]!.certFile, keyFile: members[0]!.keyFile, clientCertAuth: false };
    started.push(await startMember(1n, { ...httpsListen, tls: caOnly }), await startMember(2n, { ...httpsListen, tls: neither }));
    const [a, b] = started as [TestMember, TestMember];
    assert.ok((await probe(a.url, clientOptions(members[1]!, false))) instanceof Error);
    assert.equal(await probe(a.url, clientOptions(members[1]!, true)), 404);
    assert.equal(await probe(b.url, clientOptions(members[1]!, false)), 404);
  } finally {
    await stopAll(started);
  }
});

test("a snapshot is sent over TLS on a connection of its own", { timeout: 15_000 }, async () => {
  const started: TestMember[] = [];
  try {
    started.push(await startMember(1n, { ...httpsListen, tls: members[0] }), await startMember(2n, { ...httpsListen, tls: members[1] }));
    const [a, b] = started as [TestMember, TestMember];
    a.transport.addPeer(2n, [b.url]);
    const data = new Uint8Array(4 * 1024 * 1024).map((_, index) => index % 253);
    const confState = { ...emptyConfState(), voters: [1n, 2n] };
    const snapshot = message({ type: MessageType.MsgSnap, from: 1n, to: 2n, term: 3, snapshot: { data, metadata: { confState, index: 1000, term: 2 } } });
    a.transport.send([numbered(1n, 2n, 1), snapshot, numbered(1n, 2n, 2)]);
    await waitFor(() => a.snapshotStatuses.length === 1 && b.received.length === 3, "the snapshot and both messages", 10_000);
    assert.deepEqual(a.snapshotStatuses, [{ peerId: 2n, status: "finish" }]);
    const received = b.received.find((m) => m.type === MessageType.MsgSnap)!;
    assert.deepEqual(received.snapshot!.metadata, snapshot.snapshot!.metadata);
    assert.ok(Buffer.from(received.snapshot!.data).equals(data));
    assert.deepEqual(indexes(b, 1n).filter((index) => index !== 0), [1, 2]);
  } finally {
    await stopAll(started);
  }
});

test("mixed http and https: a member with TLS configured serves h2c on an http URL and dials either scheme", { timeout: 15_000 }, async () => {
  const started: TestMember[] = [];
  try {
    started.push(
      await startMember(1n, { ...httpsListen, tls: members[0] }),
      await startMember(2n, { listenUrls: ["http://127.0.0.1:0"], tls: members[1] }),
      await startMember(3n, { listenUrls: ["http://127.0.0.1:0"] }),
    );
    const [, b, c] = started as [TestMember, TestMember, TestMember];
    assert.match(b.url, /^http:/);
    assert.ok(b.logger.lines.some((line) => /ignoring key and cert files/.test(line.message)));
    // Member 3 has no TLS: it dials the http members only.
    for (const member of started) {
      for (const other of started) {
        if (member === other || (member === c && other.url.startsWith("https:"))) continue;
        member.transport.addPeer(other.transport.memberId, [other.url]);
      }
    }
    for (const sender of started) {
      const from = sender.transport.memberId;
      sender.transport.send(sender.transport.peerIds().flatMap((to) => range(1, 50).map((index) => numbered(from, to, index))));
    }
    await waitFor(() => started[0]!.received.length === 50 && b.received.length === 100 && c.received.length === 100, "every message");
    assert.deepEqual(indexes(started[0]!, 2n), range(1, 50));
    assert.deepEqual(indexes(b, 1n), range(1, 50));
    assert.deepEqual(indexes(c, 1n), range(1, 50));
  } finally {
    await stopAll(started);
  }
});

test("configuration errors are clear, and found before anything listens", () => {
  const expectError = (run: () => unknown, code: string, pattern: RegExp): void => {
    assert.throws(run, (error) => error instanceof TransportError && error.code === code && pattern.test(error.message));
  };
  expectError(() => new PeerTransport({ memberId: 1n, clusterId: 1n, listenUrls: ["https://127.0.0.1:0"] }), "tls_not_configured", /cannot listen on TLS for https:\/\/127\.0\.0\.1:0: KeyFile and CertFile are not presented/);
  expectError(() => loadPeerTls({ ...members[0]!, certFile: `${pki.directory}/missing.crt` }), "bad_peer_tls", /cannot read the peer certificate file .*missing\.crt/);
  expectError(() => loadPeerTls({ ...members[0]!, keyFile: members[1]!.keyFile }), "bad_peer_tls", /not usable/);
  expectError(() => loadPeerTls({ ...members[0]!, certFile: "" }), "bad_peer_tls", /KeyFile and CertFile must both be present/);
  expectError(() => connectPeer("ftp://127.0.0.1:1", undefined), "bad_peer_url", /scheme must be http or https/);
});

test("connectPeer dials a peer with the member's TLS settings", { timeout: 15_000 }, async () => {
  const started: TestMember[] = [];
  try {
    started.push(await startMember(1n, { ...httpsListen, tls: members[0] }));
    const a = started[0]!;
    a.transport.onOtherRequest((stream, headers) => {
      if (headers[":path"] !== "/members") return false;
      stream.respond({ ":status": 200 });
      stream.end("[]");
      return true;
    });
    const get = (session: http2.ClientHttp2Session): Promise<number | Error> =>
      new Promise((resolve) => {
        const timer = setTimeout(() => resolve(new Error("no answer")), probeTimeoutMs);
        const finish = (result: number | Error): void => {
          clearTimeout(timer);
          session.destroy();
          resolve(result);
        };
        session.on("error", finish);
        const stream = session.request({ ":path": "/members" });
        stream.on("response", (headers) => finish(Number(headers[":status"])));
        stream.on("error", finish);
        stream.resume();
      });
    assert.equal(await get(connectPeer(a.url, members[1])), 200, "with the options (files read at the first call)");
    assert.equal(await get(connectPeer(a.url, loadPeerTls(members[2]!))), 200, "with credentials already read");
    assert.ok((await get(connectPeer(a.url, undefined))) instanceof Error, "without TLS settings the test CA is not trusted");
  } finally {
    await stopAll(started);
  }
});
