// Client TLS: the real etcdctl with --cacert/--cert/--key against an https
// client URL of tetcd and of etcd 3.4 started with the same flags
// (--client-cert-auth, a trusted CA, a CRL, an allowed hostname), outputs
// compared; clients without a certificate, with one from another CA, with a
// revoked one, or with one for another hostname are refused by both and never
// reach a handler.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { freePort, startEtcd, startTetcd, type ServerProcess } from "../support/processes.js";
import { TestPki } from "../transport/tls-certs.js";
import { describeStep, kindOf, normalize, requireReferenceBinaries, runCtl, type Step } from "./harness.js";

/** Certificates of one test run: a CA, the server's, clients of every kind, and the CA's revocation list. */
interface Certificates {
  ca: string;
  server: { certFile: string; keyFile: string };
  client: string[];
  noCertificate: string[];
  otherAuthority: string[];
  revoked: string[];
  otherHostname: string[];
  crl: string;
}

function makeCertificates(pki: TestPki): Certificates {
  pki.authority("ca");
  pki.authority("other-ca");
  const server = pki.member("server", "ca", true);
  const flags = (name: string, authority: string, subjectAltName: string): string[] => {
    const made = pki.member(name, authority, true, "ca", subjectAltName);
    return ["--cacert", made.trustedCaFile!, "--cert", made.certFile, "--key", made.keyFile];
  };
  const client = flags("client", "ca", "DNS:client.example");
  const revoked = flags("revoked", "ca", "DNS:client.example");
  return {
    ca: server.trustedCaFile!,
    server,
    client,
    noCertificate: ["--cacert", server.trustedCaFile!],
    otherAuthority: flags("stranger", "other-ca", "DNS:client.example"),
    revoked,
    otherHostname: flags("elsewhere", "ca", "DNS:elsewhere.example"),
    crl: pki.revocationList("ca", ["revoked"]),
  };
}

/** etcd's client TLS flags for an https client URL on `port`. */
function serverFlags(certificates: Certificates, port: number): string[] {
  const url = `https://127.0.0.1:${port}`;
  return [
    "--listen-client-urls", url, "--advertise-client-urls", url,
    "--cert-file", certificates.server.certFile, "--key-file", certificates.server.keyFile,
    "--trusted-ca-file", certificates.ca, "--client-cert-auth",
    "--client-crl-file", certificates.crl, "--client-cert-allowed-hostname", "client.example",
  ];
}

/** Waits until `endpoint health` passes over TLS with the client's certificate. */
async function waitHealthy(server: ServerProcess, tlsFlags: readonly string[]): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const probe = runCtl(server.endpoint, [...tlsFlags, "endpoint", "health"]);
    if (probe.status === 0) return;
    if (Date.now() > deadline) throw new Error(`${server.endpoint} never became healthy over TLS:\n${probe.stderr}\n${server.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The server's log after `offset`, once it matches `pattern` (within a few seconds: the log arrives through a pipe). */
async function logAfter(server: ServerProcess, offset: number, pattern: RegExp): Promise<string> {
  const deadline = Date.now() + 5_000;
  while (!pattern.test(server.output().slice(offset)) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  return server.output().slice(offset);
}

/** Bounded waits for refused clients: etcdctl otherwise retries for its default 5 s. */
const refusedTimeouts = ["--dial-timeout", "1s", "--command-timeout", "2s"];

const script: Step[] = [
  { args: ["put", "tls/a", "1"] },
  { args: ["put", "tls/b", "2", "--prev-kv"] },
  { args: ["put", "tls/a", "3", "--prev-kv", "-w", "json"] },
  { args: ["get", "tls/", "--prefix", "-w", "json"] },
  { args: ["get", "tls/", "--prefix", "--keys-only"] },
  { args: ["del", "tls/b", "--prev-kv"] },
  { args: ["txn"], input: "value(\"tls/a\") = \"3\"\n\nput tls/c 4\n\nget tls/a\n\n" },
  { args: ["endpoint", "health"] },
  { args: ["get", "tls/c", "-w", "fields"] },
];

describe("etcdctl over client TLS with client certificate auth, compared with etcd", { timeout: 180_000 }, () => {
  const pki = new TestPki();
  let certificates: Certificates;
  let etcd: ServerProcess | undefined;
  let tetcd: ServerProcess | undefined;

  before(async () => {
    requireReferenceBinaries();
    certificates = makeCertificates(pki);
    const [etcdPort, tetcdPort] = [await freePort(), await freePort()];
    etcd = await startEtcd({ port: etcdPort, extraArgs: serverFlags(certificates, etcdPort) });
    tetcd = await startTetcd({ port: tetcdPort, extraArgs: serverFlags(certificates, tetcdPort) });
    await waitHealthy(etcd, certificates.client);
    await waitHealthy(tetcd, certificates.client);
  });
  after(async () => {
    await Promise.allSettled([etcd?.stop(), tetcd?.stop()]);
    pki.remove();
  });

  for (const step of script) {
    test(`with a client certificate: ${describeStep(step)}`, () => {
      const withTls = { ...step, args: [...certificates.client, ...step.args] };
      const kind = kindOf(step);
      const fromEtcd = normalize(runCtl(etcd!.endpoint, withTls.args, step.input), etcd!.endpoint, kind);
      const fromTetcd = normalize(runCtl(tetcd!.endpoint, withTls.args, step.input), tetcd!.endpoint, kind);
      assert.equal(fromEtcd.status, 0, fromEtcd.stderr);
      assert.deepEqual(fromTetcd, fromEtcd);
    });
  }

  test("an https:// endpoint URL works as the bare address does", () => {
    const args = [...certificates.client, "get", "tls/a", "--print-value-only"];
    const fromEtcd = runCtl(`https://${etcd!.endpoint}`, args);
    const fromTetcd = runCtl(`https://${tetcd!.endpoint}`, args);
    assert.equal(fromEtcd.stdout.toString(), "3\n");
    assert.equal(fromTetcd.stdout.toString(), fromEtcd.stdout.toString(), fromTetcd.stderr);
  });

  const refusals: Array<{ what: string; flags: (certificates: Certificates) => string[]; reason: RegExp }> = [
    { what: "no client certificate", flags: (c) => c.noCertificate, reason: /tls: client didn't provide a certificate/ },
    { what: "a certificate from another CA", flags: (c) => c.otherAuthority, reason: /certificate signed by unknown authority/ },
    { what: "a revoked certificate (CRL)", flags: (c) => c.revoked, reason: /transport: certificate serial [0-9a-f]+ revoked/ },
    { what: "a certificate for a hostname not allowed", flags: (c) => c.otherHostname, reason: /client certificate authentication failed/ },
  ];
  for (const refusal of refusals) {
    test(`refused: ${refusal.what}; the put reaches no handler`, async () => {
      const key = `refused/${refusal.what.replaceAll(" ", "-")}`;
      for (const server of [etcd!, tetcd!]) {
        const before = server.output().length;
        const result = runCtl(server.endpoint, [...refusal.flags(certificates), ...refusedTimeouts, "put", key, "v"]);
        assert.equal(result.status, 1, `${server === etcd ? "etcd" : "tetcd"}: ${result.stderr}`);
        assert.match(result.stderr, /Error: context deadline exceeded\n$/);
        const log = await logAfter(server, before, refusal.reason);
        assert.match(log, /rejected connection/, `${server === etcd ? "etcd" : "tetcd"} logs the refusal`);
        assert.match(log, refusal.reason);
        const read = runCtl(server.endpoint, [...certificates.client, "get", key, "--print-value-only"]);
        assert.equal(read.status, 0, read.stderr);
        assert.equal(read.stdout.toString(), "", "the refused put wrote nothing");
      }
    });
  }
});
