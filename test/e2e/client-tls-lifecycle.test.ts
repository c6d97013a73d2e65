// Client TLS over a member's life: a CRL and a certificate replaced on disk
// while it serves, TLS set up from a config file as etcd writes one, and a
// stop that connections stuck before their TLS handshake do not hold up.
// Each is run against etcd 3.4 started the same way where etcd has it.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { copyFileSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { join } from "node:path";
import tls from "node:tls";
import { after, before, describe, test } from "node:test";
import { freePort, startEtcd, startTetcd, temporaryDirectory, type ServerProcess } from "../support/processes.js";
import { TestPki } from "../transport/tls-certs.js";
import { requireReferenceBinaries, runCtl } from "./harness.js";

describe("stopping a member with client connections that never finished a TLS handshake", { timeout: 60_000 }, () => {
  test("SIGTERM ends them and the member exits by itself", async () => {
    const pki = new TestPki();
    try {
      pki.authority("ca");
      const server = pki.member("server", "ca", false);
      const port = await freePort();
      const url = `https://127.0.0.1:${port}`;
      const tetcd = await startTetcd({ port, extraArgs: ["--listen-client-urls", url, "--advertise-client-urls", url, "--cert-file", server.certFile, "--key-file", server.keyFile] });
      const idle = await new Promise<net.Socket>((resolve, reject) => {
        const socket = net.connect(port, "127.0.0.1", () => resolve(socket));
        socket.on("error", reject);
      });
      const closed = new Promise<void>((resolve) => idle.once("close", () => resolve()));
      idle.on("error", () => undefined);
      const exited = new Promise<string>((resolve) => tetcd.child.once("exit", (code, signal) => resolve(signal === null ? `exit ${code}` : `signal ${signal}`)));
      tetcd.child.kill("SIGTERM");
      // ServerProcess.stop would SIGKILL after 5 s; the member must not need it.
      const code = await Promise.race([exited, new Promise<string>((resolve) => setTimeout(() => resolve("still running"), 4_000))]);
      await tetcd.stop();
      assert.equal(code, "signal SIGTERM", "a clean stop ends by the signal that asked for it, as etcd's");
      await closed;
    } finally {
      pki.remove();
    }
  });
});

describe("client TLS files replaced while serving (a new CRL, a rotated certificate), compared with etcd", { timeout: 90_000 }, () => {
  const pki = new TestPki();
  const servers: Array<{ kind: string; process: ServerProcess }> = [];
  let user: string[] = [];
  let laterRevoked: string[] = [];
  let crl = "";
  const live = { certFile: join(pki.directory, "live.crt"), keyFile: join(pki.directory, "live.key") };

  before(async () => {
    requireReferenceBinaries();
    pki.authority("ca");
    const first = pki.member("first-server", "ca", true);
    copyFileSync(first.certFile, live.certFile);
    copyFileSync(first.keyFile, live.keyFile);
    const flags = (name: string): string[] => {
      const made = pki.member(name, "ca", true);
      return ["--cacert", made.trustedCaFile!, "--cert", made.certFile, "--key", made.keyFile, "--dial-timeout", "1s", "--command-timeout", "2s"];
    };
    user = flags("user");
    laterRevoked = flags("later-revoked");
    crl = pki.revocationList("ca", []);
    for (const kind of ["etcd", "tetcd"] as const) {
      const port = await freePort();
      const url = `https://127.0.0.1:${port}`;
      const extraArgs = ["--listen-client-urls", url, "--advertise-client-urls", url, "--cert-file", live.certFile, "--key-file", live.keyFile, "--trusted-ca-file", first.trustedCaFile!, "--client-cert-auth", "--client-crl-file", crl];
      servers.push({ kind, process: await (kind === "etcd" ? startEtcd : startTetcd)({ port, extraArgs }) });
    }
  });
  after(async () => {
    await Promise.allSettled(servers.map((server) => server.process.stop()));
    pki.remove();
  });

  async function put(server: ServerProcess, flags: readonly string[]): Promise<number> {
    const deadline = Date.now() + 10_000;
    let result = runCtl(server.endpoint, [...flags, "put", "rotation", "v"]);
    // A fresh member may not have elected itself yet; a refusal by TLS never turns into success.
    while (result.status !== 0 && !/deadline exceeded/.test(result.stderr) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      result = runCtl(server.endpoint, [...flags, "put", "rotation", "v"]);
    }
    return result.status;
  }

  function presentedFingerprint(server: ServerProcess): Promise<string> {
    return new Promise((resolve, reject) => {
      const [host, port] = server.endpoint.split(":");
      const socket = tls.connect({ host, port: Number(port), rejectUnauthorized: false, cert: readFileSync(user[3]!), key: readFileSync(user[5]!) }, () => {
        resolve(socket.getPeerX509Certificate()!.fingerprint256);
        socket.destroy();
      });
      socket.on("error", reject);
    });
  }

  test("a certificate revoked by a CRL written after the start is refused from then on", async () => {
    for (const { kind, process } of servers) assert.equal(await put(process, laterRevoked), 0, `${kind}: not revoked yet`);
    pki.revocationList("ca", ["later-revoked"]);
    for (const { kind, process } of servers) {
      assert.equal(await put(process, laterRevoked), 1, `${kind}: revoked now`);
      assert.equal(await put(process, user), 0, `${kind}: others still served`);
    }
  });

  test("a certificate and key replaced on disk are presented to the next client", async () => {
    const second = pki.member("second-server", "ca", true);
    const expected = new X509Certificate(readFileSync(second.certFile)).fingerprint256;
    for (const { kind, process } of servers) assert.notEqual(await presentedFingerprint(process), expected, kind);
    copyFileSync(second.keyFile, live.keyFile);
    copyFileSync(second.certFile, live.certFile);
    for (const { kind, process } of servers) {
      assert.equal(await presentedFingerprint(process), expected, kind);
      assert.equal(await put(process, user), 0, kind);
    }
  });
});

describe("a config file with a client-transport-security block, compared with etcd", { timeout: 60_000 }, () => {
  test("both serve client TLS from it and refuse a client without a certificate", async () => {
    requireReferenceBinaries();
    const pki = new TestPki();
    const started: ServerProcess[] = [];
    const directories: string[] = [];
    try {
      pki.authority("ca");
      const server = pki.member("server", "ca", true);
      const user = pki.member("user", "ca", true);
      const client = ["--cacert", user.trustedCaFile!, "--cert", user.certFile, "--key", user.keyFile, "--dial-timeout", "1s", "--command-timeout", "2s"];
      for (const kind of ["etcd", "tetcd"] as const) {
        const directory = temporaryDirectory(`${kind}-tls-yaml`);
        directories.push(directory);
        const [port, peerPort] = [await freePort(), await freePort()];
        const peer = `http://127.0.0.1:${peerPort}`;
        const path = join(directory, "etcd.yaml");
        writeFileSync(path, [
          `data-dir: ${join(directory, "data")}`,
          `listen-client-urls: https://127.0.0.1:${port}`,
          `advertise-client-urls: https://127.0.0.1:${port}`,
          `listen-peer-urls: ${peer}`,
          `initial-advertise-peer-urls: ${peer}`,
          `initial-cluster: default=${peer}`,
          "client-transport-security:",
          `  cert-file: ${server.certFile}`,
          `  key-file: ${server.keyFile}`,
          `  trusted-ca-file: ${server.trustedCaFile}`,
          "  client-cert-auth: true",
          "",
        ].join("\n"));
        const process = await (kind === "etcd" ? startEtcd : startTetcd)({ port, dataDir: join(directory, "data"), extraArgs: ["--config-file", path] });
        started.push(process);
        const deadline = Date.now() + 15_000;
        let put = runCtl(process.endpoint, [...client, "put", "yaml", kind]);
        while (put.status !== 0 && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 200));
          put = runCtl(process.endpoint, [...client, "put", "yaml", kind]);
        }
        assert.equal(put.status, 0, `${kind}: ${put.stderr}`);
        const refused = runCtl(process.endpoint, ["--cacert", user.trustedCaFile!, "--dial-timeout", "1s", "--command-timeout", "2s", "get", "yaml"]);
        assert.equal(refused.status, 1, kind);
      }
    } finally {
      await Promise.allSettled(started.map((server) => server.stop()));
      for (const directory of directories) rmSync(directory, { recursive: true, force: true });
      pki.remove();
    }
  });
});
