import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { ConfigError, loadConfig } from "../../src/server/config.js";
import { openSslCipherSuites, UnknownCipherSuiteError } from "../../src/pkg/cipher-suites.js";
import { temporaryDirectory } from "../support/processes.js";

const refused = (argv: string[], pattern: RegExp): void => {
  assert.throws(() => loadConfig(argv, {}), (error) => error instanceof ConfigError && pattern.test(error.message), argv.join(" "));
};

describe("client TLS configuration", () => {
  const https = ["--listen-client-urls", "https://127.0.0.1:2379", "--advertise-client-urls", "https://127.0.0.1:2379"];

  test("none by default; the flags reach the config, files unread", () => {
    assert.equal(loadConfig([], {}).clientTls, undefined);
    const config = loadConfig([...https, "--cert-file", "s.crt", "--key-file", "s.key", "--trusted-ca-file", "ca.crt", "--client-cert-auth", "--client-crl-file", "ca.crl", "--client-cert-allowed-hostname", "client.example"], {});
    assert.deepEqual(config.clientTls, {
      certFile: "s.crt",
      keyFile: "s.key",
      trustedCaFile: "ca.crt",
      clientCertAuth: true,
      crlFile: "ca.crl",
      allowedHostname: "client.example",
      ciphers: [],
      selfSigned: undefined,
    });
  });

  test("the same from ETCD_* variables", () => {
    const config = loadConfig([], { ETCD_LISTEN_CLIENT_URLS: "https://127.0.0.1:2379", ETCD_CERT_FILE: "s.crt", ETCD_KEY_FILE: "s.key", ETCD_CLIENT_CERT_AUTH: "true", ETCD_CIPHER_SUITES: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" });
    assert.equal(config.clientTls?.clientCertAuth, true);
    assert.deepEqual(config.clientTls?.ciphers, ["ECDHE-RSA-AES128-GCM-SHA256"]);
  });

  test("--cipher-suites: Go's names, in order, as OpenSSL's; an unknown one refused in etcd's words", () => {
    const config = loadConfig([...https, "--cert-file", "s.crt", "--key-file", "s.key", "--cipher-suites", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305,TLS_RSA_WITH_AES_256_GCM_SHA384"], {});
    assert.deepEqual(config.clientTls?.ciphers, ["ECDHE-ECDSA-CHACHA20-POLY1305", "AES256-GCM-SHA384"]);
    assert.deepEqual(openSslCipherSuites(["TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"]), ["ECDHE-RSA-CHACHA20-POLY1305"]);
    assert.throws(() => openSslCipherSuites(["TLS_AES_128_GCM_SHA256"]), UnknownCipherSuiteError, "TLS 1.3 suites are not configurable");
    refused(["--cipher-suites", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,bogus"], /^unexpected TLS cipher suite "bogus"$/);
  });

  test("--auto-tls: a certificate kept in the data dir for the listen hosts; the other client TLS flags do not apply, as in etcd", () => {
    const config = loadConfig(["--data-dir", "/tmp/d", "--listen-client-urls", "https://127.0.0.1:2379,https://[::1]:2379,http://localhost:2378", "--auto-tls", "--client-cert-auth", "--trusted-ca-file", "ca.crt"], {});
    const directory = join("/tmp/d", "fixtures", "client");
    assert.deepEqual(config.clientTls, {
      certFile: join(directory, "cert.pem"),
      keyFile: join(directory, "key.pem"),
      trustedCaFile: undefined,
      clientCertAuth: false,
      crlFile: undefined,
      allowedHostname: undefined,
      ciphers: [],
      selfSigned: { directory, hosts: ["127.0.0.1", "::1", "localhost"] },
    });
    const given = loadConfig([...https, "--auto-tls", "--cert-file", "s.crt", "--key-file", "s.key"], {});
    assert.equal(given.clientTls?.selfSigned, undefined, "given files win over --auto-tls");
  });

  test("refusals: https or unixs without a certificate, half a pair", () => {
    refused(https, /^TLS key\/cert \(--cert-file, --key-file\) must be provided for client url https:\/\/127.0.0.1:2379 with HTTPS scheme$/);
    refused([...https, "--key-file", "s.key"], /^KeyFile and CertFile must both be present\[key: s.key, cert: \]$/);
    refused(["--listen-client-urls", "unixs://localhost:1"], /^TLS key\/cert \(--cert-file, --key-file\) must be provided for client url unixs:\/\/localhost:1 with HTTPS scheme$/);
    assert.notEqual(loadConfig(["--listen-client-urls", "unixs://localhost:1", "--cert-file", "s.crt", "--key-file", "s.key"], {}).clientTls, undefined);
    const peerHttps = ["--listen-peer-urls", "https://127.0.0.1:2380", "--initial-advertise-peer-urls", "https://127.0.0.1:2380", "--peer-cert-file", "m.crt", "--peer-key-file", "m.key"];
    assert.notEqual(loadConfig([...peerHttps, ...https, "--cert-file", "s.crt", "--key-file", "s.key"], {}).clientTls, undefined, "client and peer TLS together");
    const withSuites = loadConfig([...peerHttps, "--cipher-suites", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"], {});
    assert.deepEqual(withSuites.peerTls?.ciphers, ["ECDHE-RSA-AES128-GCM-SHA256"], "--cipher-suites applies to peer TLS too");
    assert.equal(withSuites.clientTls, undefined);
  });

  test("a config file's client-transport-security and peer-transport-security blocks, as etcd writes them", () => {
    const directory = temporaryDirectory("tetcd-tls-yaml");
    try {
      const path = join(directory, "etcd.yaml");
      writeFileSync(path, [
        "listen-client-urls: https://127.0.0.1:2379",
        "cipher-suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]",
        "client-transport-security:",
        "  cert-file: s.crt",
        "  key-file: s.key",
        "  client-cert-auth: true",
        "  trusted-ca-file: ca.crt",
        "  auto-tls: false",
        "peer-transport-security:",
        "  cert-file: p.crt",
        "  key-file: p.key",
        "",
      ].join("\n"));
      const config = loadConfig(["--config-file", path], {});
      assert.equal(config.clientTls?.certFile, "s.crt");
      assert.equal(config.clientTls?.clientCertAuth, true);
      assert.equal(config.clientTls?.trustedCaFile, "ca.crt");
      assert.deepEqual(config.clientTls?.ciphers, ["ECDHE-RSA-AES128-GCM-SHA256"]);
      assert.equal(config.peerTls?.certFile, "p.crt");
      writeFileSync(path, "client-transport-security:\n  crl: x\n");
      assert.throws(() => loadConfig(["--config-file", path], {}), (error) => error instanceof ConfigError && /unknown field "client-transport-security.crl"/.test(error.message));
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});
