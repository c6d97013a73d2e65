// Client TLS beyond etcdctl: an https and an http client URL served together,
// curl on /health and the /v3 gateway over https, --cipher-suites obeyed,
// --auto-tls serving https with a certificate shaped as etcd's, the start
// refusals (an unknown cipher suite, https without a certificate) in etcd's
// words, unixs and unix URLs. Each is run against etcd 3.4 started the same way.
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { X509Certificate } from "node:crypto";
import { join } from "node:path";
import tls from "node:tls";
import { after, before, describe, test } from "node:test";
import { freePort, hasCommand, startEtcd, startTetcd, temporaryDirectory, tetcdBin, type ServerProcess } from "../support/processes.js";
import { TestPki } from "../transport/tls-certs.js";
import { requireReferenceBinaries, runCtl } from "./harness.js";

/** curl's result: exit status and body. */
function curl(args: readonly string[]): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    execFile("curl", ["-s", "--max-time", "5", ...args], { encoding: "utf8", timeout: 10_000 }, (error, stdout) => {
      resolve({ status: error === null ? 0 : typeof error.code === "number" ? error.code : -1, body: stdout });
    });
  });
}

/** A gateway answer without its header (ids and terms differ between servers). */
function withoutHeader(body: string): unknown {
  const parsed = JSON.parse(body) as Record<string, unknown>;
  delete parsed.header;
  return parsed;
}

/** Whether a TLS 1.2 handshake offering only `cipher` (an OpenSSL name) succeeds; the suite chosen when it does. */
function handshake(port: number, cipher: string, credentials: { ca: Buffer; cert: Buffer; key: Buffer }): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: "127.0.0.1", port, ciphers: cipher, maxVersion: "TLSv1.2", ...credentials, servername: "localhost" }, () => {
      const chosen = socket.getCipher().name;
      socket.destroy();
      resolve(chosen);
    });
    socket.setTimeout(5_000, () => socket.destroy(new Error("timeout")));
    socket.on("error", () => resolve(undefined));
  });
}

const cipherSuites = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305";

describe("an https and an http client URL on one member, curl and cipher suites, compared with etcd", { timeout: 120_000 }, () => {
  const pki = new TestPki();
  const servers: Record<"etcd" | "tetcd", { process: ServerProcess; https: number; http: number } | undefined> = { etcd: undefined, tetcd: undefined };
  let client: string[] = [];
  let credentials: { ca: Buffer; cert: Buffer; key: Buffer };

  before(async () => {
    requireReferenceBinaries();
    assert.ok(hasCommand("curl"), "curl must be installed for these tests");
    pki.authority("ca");
    const server = pki.member("server", "ca", true);
    const user = pki.member("user", "ca", true);
    client = ["--cacert", user.trustedCaFile!, "--cert", user.certFile, "--key", user.keyFile];
    credentials = { ca: readFileSync(user.trustedCaFile!), cert: readFileSync(user.certFile), key: readFileSync(user.keyFile) };
    for (const kind of ["etcd", "tetcd"] as const) {
      const [https, http] = [await freePort(), await freePort()];
      const urls = `https://127.0.0.1:${https},http://127.0.0.1:${http}`;
      const extraArgs = [
        "--listen-client-urls", urls, "--advertise-client-urls", `https://127.0.0.1:${https}`,
        "--cert-file", server.certFile, "--key-file", server.keyFile, "--trusted-ca-file", server.trustedCaFile!, "--client-cert-auth",
        "--cipher-suites", cipherSuites,
      ];
      const process = await (kind === "etcd" ? startEtcd : startTetcd)({ port: https, extraArgs });
      servers[kind] = { process, https, http };
    }
  });
  after(async () => {
    await Promise.allSettled([servers.etcd?.process.stop(), servers.tetcd?.process.stop()]);
    pki.remove();
  });

  test("curl with a client certificate gets /health over https; without one it is refused", async () => {
    for (const kind of ["etcd", "tetcd"] as const) {
      const { https } = servers[kind]!;
      const base = `https://127.0.0.1:${https}`;
      const tlsArgs = ["--cacert", client[1]!, "--cert", client[3]!, "--key", client[5]!];
      const deadline = Date.now() + 15_000;
      let health = await curl([...tlsArgs, `${base}/health`]);
      while (health.body !== '{"health":"true"}' && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        health = await curl([...tlsArgs, `${base}/health`]);
      }
      assert.equal(health.body, '{"health":"true"}', kind);
      const refused = await curl(["--cacert", client[1]!, `${base}/health`]);
      assert.notEqual(refused.status, 0, `${kind}: a client without a certificate is refused`);
      assert.equal(refused.body, "", kind);
    }
  });

  test("the /v3 gateway over https and over http answers alike, as etcd's", async () => {
    const answers: Record<string, unknown[]> = {};
    for (const kind of ["etcd", "tetcd"] as const) {
      const { https, http } = servers[kind]!;
      const tlsArgs = ["--cacert", client[1]!, "--cert", client[3]!, "--key", client[5]!];
      const put = await curl([...tlsArgs, "-X", "POST", "-d", JSON.stringify({ key: btoa("gw/k"), value: btoa("over-tls") }), `https://127.0.0.1:${https}/v3/kv/put`]);
      assert.equal(put.status, 0, kind);
      const range = JSON.stringify({ key: btoa("gw/k") });
      const secure = await curl([...tlsArgs, "-X", "POST", "-d", range, `https://127.0.0.1:${https}/v3/kv/range`]);
      const plain = await curl(["-X", "POST", "-d", range, `http://127.0.0.1:${http}/v3/kv/range`]);
      answers[kind] = [withoutHeader(put.body), withoutHeader(secure.body), withoutHeader(plain.body)];
      assert.deepEqual(withoutHeader(plain.body), withoutHeader(secure.body), `${kind}: http and https read the same`);
    }
    assert.equal((answers["tetcd"]![1] as { kvs: Array<{ value: string }> }).kvs[0]!.value, btoa("over-tls"));
    assert.deepEqual(answers["tetcd"], answers["etcd"]);
  });

  test("etcdctl reads over the http URL without certificates what was written over https", () => {
    for (const kind of ["etcd", "tetcd"] as const) {
      const { http } = servers[kind]!;
      const read = runCtl(`127.0.0.1:${http}`, ["get", "gw/k", "--print-value-only"]);
      assert.equal(read.stdout.toString(), "over-tls\n", `${kind}: ${read.stderr}`);
    }
  });

  test("--cipher-suites: a client offering only other suites fails the handshake; a listed one is chosen", async () => {
    for (const kind of ["etcd", "tetcd"] as const) {
      const { https } = servers[kind]!;
      assert.equal(await handshake(https, "ECDHE-ECDSA-AES256-GCM-SHA384", credentials), undefined, `${kind}: a suite not listed`);
      assert.equal(await handshake(https, "ECDHE-ECDSA-AES128-GCM-SHA256", credentials), "ECDHE-ECDSA-AES128-GCM-SHA256", kind);
      assert.equal(await handshake(https, "ECDHE-ECDSA-CHACHA20-POLY1305", credentials), "ECDHE-ECDSA-CHACHA20-POLY1305", kind);
    }
  });
});

describe("--auto-tls, compared with etcd", { timeout: 120_000 }, () => {
  const started: ServerProcess[] = [];
  after(async () => {
    await Promise.allSettled(started.map((server) => server.stop()));
  });

  async function startAutoTls(kind: "etcd" | "tetcd", dataDir?: string): Promise<ServerProcess> {
    const port = await freePort();
    const url = `https://127.0.0.1:${port}`;
    const server = await (kind === "etcd" ? startEtcd : startTetcd)({ port, ...(dataDir === undefined ? {} : { dataDir }), extraArgs: ["--listen-client-urls", url, "--advertise-client-urls", url, "--auto-tls", "--client-cert-auth"] });
    started.push(server);
    return server;
  }

  async function putAndGet(server: ServerProcess, value: string): Promise<string> {
    const insecure = ["--insecure-skip-tls-verify", "--insecure-transport=false"];
    const deadline = Date.now() + 15_000;
    let put = runCtl(server.endpoint, [...insecure, "put", "auto", value]);
    while (put.status !== 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      put = runCtl(server.endpoint, [...insecure, "put", "auto", value]);
    }
    assert.equal(put.status, 0, put.stderr);
    return runCtl(server.endpoint, [...insecure, "get", "auto", "--print-value-only"]).stdout.toString();
  }

  // With --auto-tls, etcd asks no client certificate even with --client-cert-auth: etcdctl below presents none.
  test("serves https with a self-signed certificate shaped as etcd's, kept across restarts", async () => {
    requireReferenceBinaries();
    const etcd = await startAutoTls("etcd");
    const dataDir = temporaryDirectory("tetcd-auto-tls");
    let tetcd = await startAutoTls("tetcd", dataDir);
    assert.equal(await putAndGet(etcd, "e"), "e\n");
    assert.equal(await putAndGet(tetcd, "t"), "t\n");
    const certificateOf = (directory: string): X509Certificate => new X509Certificate(readFileSync(join(directory, "fixtures", "client", "cert.pem")));
    const expected = certificateOf(etcd.dataDir);
    const made = certificateOf(dataDir);
    for (const field of ["subject", "issuer", "subjectAltName", "keyUsage", "ca"] as const) assert.deepEqual(made[field], expected[field], field);
    assert.equal(made.publicKey.asymmetricKeyDetails?.namedCurve, expected.publicKey.asymmetricKeyDetails?.namedCurve);
    assert.ok(made.verify(made.publicKey), "self-signed");
    const validDays = (certificate: X509Certificate): number => Math.round((Date.parse(certificate.validTo) - Date.parse(certificate.validFrom)) / 86_400_000);
    assert.equal(validDays(made), validDays(expected));
    // What the server presents is that certificate.
    const presented = await new Promise<string>((resolve, reject) => {
      const socket = tls.connect({ host: "127.0.0.1", port: Number(tetcd.endpoint.split(":")[1]), rejectUnauthorized: false }, () => {
        resolve(socket.getPeerX509Certificate()!.fingerprint256);
        socket.destroy();
      });
      socket.on("error", reject);
    });
    assert.equal(presented, made.fingerprint256);
    await tetcd.stop();
    started.splice(started.indexOf(tetcd), 1);
    tetcd = await startAutoTls("tetcd", dataDir);
    assert.equal(await putAndGet(tetcd, "again"), "again\n");
    assert.equal(certificateOf(dataDir).fingerprint256, made.fingerprint256, "the certificate is kept");
    await tetcd.stop();
    started.splice(started.indexOf(tetcd), 1);
    rmSync(dataDir, { recursive: true, force: true });
  });
});

describe("client TLS flags refused at start, in etcd's words", { timeout: 60_000 }, () => {
  async function startFails(kind: "etcd" | "tetcd", extraArgs: (port: number) => string[]): Promise<string> {
    const [port, peerPort] = [await freePort(), await freePort()];
    const dataDir = temporaryDirectory(`${kind}-refused`);
    const peer = `http://127.0.0.1:${peerPort}`;
    const args = ["--data-dir", dataDir, "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", `default=${peer}`, ...extraArgs(port)];
    const result = kind === "etcd" ? spawnSync("etcd", args, { encoding: "utf8", timeout: 15_000 }) : spawnSync(process.execPath, [tetcdBin, ...args], { encoding: "utf8", timeout: 15_000 });
    rmSync(dataDir, { recursive: true, force: true });
    assert.notEqual(result.status, 0, `${kind} must not start`);
    assert.equal(result.signal, null, `${kind} exits by itself`);
    return result.stderr;
  }

  test("an unknown --cipher-suites name", async () => {
    const flags = (port: number): string[] => ["--listen-client-urls", `http://127.0.0.1:${port}`, "--advertise-client-urls", `http://127.0.0.1:${port}`, "--cipher-suites", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_NOT_A_SUITE"];
    const words = 'unexpected TLS cipher suite "TLS_NOT_A_SUITE"';
    assert.ok((await startFails("etcd", flags)).includes(words));
    assert.ok((await startFails("tetcd", flags)).includes(words));
  });

  test("an https client URL without --cert-file and --key-file", async () => {
    const flags = (port: number): string[] => ["--listen-client-urls", `https://127.0.0.1:${port}`, "--advertise-client-urls", `https://127.0.0.1:${port}`];
    const words = (port: number): string => `TLS key/cert (--cert-file, --key-file) must be provided for client url https://127.0.0.1:${port} with HTTPS scheme`;
    let etcdPort = 0;
    let tetcdPort = 0;
    assert.ok((await startFails("etcd", (port) => flags((etcdPort = port)))).includes(words(etcdPort)));
    assert.ok((await startFails("tetcd", (port) => flags((tetcdPort = port)))).includes(words(tetcdPort)));
  });

  test("--cert-file without --key-file", async () => {
    const flags = (port: number): string[] => ["--listen-client-urls", `https://127.0.0.1:${port}`, "--advertise-client-urls", `https://127.0.0.1:${port}`, "--cert-file", "server.crt"];
    const words = "KeyFile and CertFile must both be present[key: , cert: server.crt]";
    assert.ok((await startFails("etcd", flags)).includes(words));
    assert.ok((await startFails("tetcd", flags)).includes(words));
  });
});

describe("unixs and unix client URLs, compared with etcd", { timeout: 60_000 }, () => {
  const pki = new TestPki();
  const servers: Array<{ kind: string; process: ServerProcess; directory: string }> = [];
  let client: string[] = [];

  // etcd takes "unix://localhost:1" as the socket file "localhost:1" in its working directory.
  before(async () => {
    requireReferenceBinaries();
    pki.authority("ca");
    const server = pki.member("server", "ca", true, "ca", "DNS:localhost");
    const user = pki.member("user", "ca", true);
    client = ["--cacert", user.trustedCaFile!, "--cert", user.certFile, "--key", user.keyFile];
    const testDirectory = process.cwd();
    for (const kind of ["etcd", "tetcd"] as const) {
      const directory = temporaryDirectory(`${kind}-unix`);
      const port = await freePort();
      const urls = `http://127.0.0.1:${port},unixs://localhost:1,unix://localhost:2`;
      const extraArgs = ["--listen-client-urls", urls, "--advertise-client-urls", urls, "--cert-file", server.certFile, "--key-file", server.keyFile, "--trusted-ca-file", server.trustedCaFile!, "--client-cert-auth"];
      process.chdir(directory);
      try {
        servers.push({ kind, process: await (kind === "etcd" ? startEtcd : startTetcd)({ port, extraArgs }), directory });
      } finally {
        process.chdir(testDirectory);
      }
    }
  });
  after(async () => {
    await Promise.allSettled(servers.map((server) => server.process.stop()));
    for (const server of servers) rmSync(server.directory, { recursive: true, force: true });
    pki.remove();
  });

  function ctl(directory: string, endpoint: string, args: readonly string[]): { status: number; stdout: string; stderr: string } {
    const result = spawnSync("etcdctl", [`--endpoints=${endpoint}`, ...args], { cwd: directory, encoding: "utf8", timeout: 20_000, env: { ...process.env, ETCDCTL_API: "3" } });
    return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
  }

  test("a write over unixs with a client certificate is read over unix without one; no certificate is refused on unixs", async () => {
    for (const { kind, directory } of servers) {
      const deadline = Date.now() + 15_000;
      let put = ctl(directory, "unixs://localhost:1", [...client, "put", "unix/k", kind]);
      while (put.status !== 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        put = ctl(directory, "unixs://localhost:1", [...client, "put", "unix/k", kind]);
      }
      assert.equal(put.stdout, "OK\n", `${kind}: ${put.stderr}`);
      assert.equal(ctl(directory, "unix://localhost:2", ["get", "unix/k", "--print-value-only"]).stdout, `${kind}\n`, kind);
      const refused = ctl(directory, "unixs://localhost:1", ["--cacert", client[1]!, "--dial-timeout", "1s", "--command-timeout", "2s", "get", "unix/k"]);
      assert.equal(refused.status, 1, kind);
      assert.match(refused.stderr, /context deadline exceeded/, kind);
    }
  });

  test("the socket files are made in the working directory and removed at stop", async () => {
    for (const server of servers) {
      assert.deepEqual(readdirSync(server.directory).filter((name) => name.startsWith("localhost:")).sort(), ["localhost:1", "localhost:2"], server.kind);
      await server.process.stop();
      assert.deepEqual(readdirSync(server.directory).filter((name) => name.startsWith("localhost:")), [], server.kind);
    }
  });
});
