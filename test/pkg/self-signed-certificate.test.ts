import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { X509Certificate, createPrivateKey } from "node:crypto";
import { readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { ensureSelfSignedCertificate, makeSelfSignedCertificate } from "../../src/pkg/self-signed-certificate.js";
import { temporaryDirectory } from "../support/processes.js";

describe("self-signed certificates for --auto-tls", () => {
  test("etcd's shape: P-521, O=etcd, a year, server auth, the hosts as SANs", () => {
    const now = new Date("2030-01-02T03:04:05Z");
    const made = makeSelfSignedCertificate(["127.0.0.1", "::1", "etcd.example", "::ffff:10.0.0.1"], now);
    const certificate = new X509Certificate(made.certificate);
    assert.equal(certificate.subject, "O=etcd");
    assert.equal(certificate.issuer, "O=etcd");
    assert.equal(certificate.ca, false);
    assert.equal(Date.parse(certificate.validFrom), Date.parse("2030-01-02T03:04:05Z"));
    assert.equal(Date.parse(certificate.validTo), Date.parse("2031-01-02T03:04:05Z"));
    assert.deepEqual(certificate.keyUsage, ["1.3.6.1.5.5.7.3.1"]);
    assert.equal(certificate.subjectAltName, "IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, DNS:etcd.example, IP Address:0:0:0:0:0:FFFF:A00:1");
    assert.equal(certificate.checkIP("127.0.0.1"), "127.0.0.1");
    assert.equal(certificate.checkHost("etcd.example"), "etcd.example");
    assert.equal(certificate.checkHost("other.example"), undefined);
    assert.equal(certificate.publicKey.asymmetricKeyDetails?.namedCurve, "secp521r1");
    assert.ok(certificate.checkPrivateKey(createPrivateKey(made.privateKey)));
    assert.match(made.privateKey, /^-----BEGIN EC PRIVATE KEY-----\n/);
    // OpenSSL reads it as Go's would be read: critical key usage and basic constraints.
    const directory = temporaryDirectory("tetcd-selfsigned");
    try {
      writeFileSync(join(directory, "cert.pem"), made.certificate);
      const text = execFileSync("openssl", ["x509", "-in", join(directory, "cert.pem"), "-noout", "-text"], { encoding: "utf8", timeout: 10_000 });
      assert.match(text, /X509v3 Key Usage: critical\n\s+Digital Signature, Key Encipherment/);
      assert.match(text, /X509v3 Basic Constraints: critical\n\s+CA:FALSE/);
      assert.match(text, /Signature Algorithm: ecdsa-with-SHA512/);
      execFileSync("openssl", ["verify", "-attime", String(Date.parse("2030-06-01T00:00:00Z") / 1000), "-CAfile", join(directory, "cert.pem"), join(directory, "cert.pem")], { timeout: 10_000, stdio: "pipe" });
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });

  test("serial numbers differ; the files are made once and then kept, the key readable by its owner only", () => {
    const a = new X509Certificate(makeSelfSignedCertificate(["127.0.0.1"]).certificate);
    const b = new X509Certificate(makeSelfSignedCertificate(["127.0.0.1"]).certificate);
    assert.notEqual(a.serialNumber, b.serialNumber);
    const directory = join(temporaryDirectory("tetcd-fixtures"), "fixtures", "client");
    try {
      const first = ensureSelfSignedCertificate(directory, ["localhost"]);
      assert.equal(first.created, true);
      assert.equal(statSync(first.keyFile).mode & 0o777, 0o600);
      const second = ensureSelfSignedCertificate(directory, ["localhost"]);
      assert.equal(second.created, false);
      assert.equal(readFileSync(second.certFile, "utf8"), readFileSync(first.certFile, "utf8"));
    } finally {
      rmSync(join(directory, "..", ".."), { recursive: true, force: true });
    }
  });
});
