import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { PeerTlsOptions } from "../../src/transport/index.js";

/** The longest one openssl run may take; key generation on EC P-256 takes milliseconds. */
const opensslTimeoutMs = 10_000;

function openssl(directory: string, args: string[]): void {
  execFileSync("openssl", args, { cwd: directory, timeout: opensslTimeoutMs, stdio: ["ignore", "ignore", "pipe"] });
}

/**
 * A throwaway PKI in a temporary directory, made with the openssl command:
 * certificate authorities, and member certificates signed by one of them, each
 * valid for 127.0.0.1 and localhost, for both server and client use (etcd's
 * peer certificates serve both ends).
 */
export class TestPki {
  readonly directory = mkdtempSync(join(tmpdir(), "tetcd-tls-"));

  /** Creates a self-signed CA; returns the path of its certificate. */
  authority(name: string): string {
    openssl(this.directory, [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-subj", `/CN=${name}`, "-days", "1", "-keyout", `${name}.key`, "-out", `${name}.crt`,
      "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    return join(this.directory, `${name}.crt`);
  }

  /**
   * Creates a member key and certificate signed by `authority`; returns TLS
   * options trusting `trustedAuthority` (the signer by default). The
   * certificate's common name is `name`; its subject alternative names are
   * `subjectAltName` (OpenSSL's syntax).
   */
  member(name: string, authority: string, clientCertAuth: boolean, trustedAuthority = authority, subjectAltName = "IP:127.0.0.1,DNS:localhost"): PeerTlsOptions {
    const extensions = join(this.directory, `${name}.ext`);
    writeFileSync(extensions, ["basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature,keyEncipherment", "extendedKeyUsage=serverAuth,clientAuth", `subjectAltName=${subjectAltName}`, ""].join("\n"));
    openssl(this.directory, ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", `/CN=${name}`, "-keyout", `${name}.key`, "-out", `${name}.csr`]);
    openssl(this.directory, [
      "x509", "-req", "-in", `${name}.csr`, "-CA", `${authority}.crt`, "-CAkey", `${authority}.key`, "-CAcreateserial",
      "-days", "1", "-out", `${name}.crt`, "-extfile", extensions,
    ]);
    return { certFile: join(this.directory, `${name}.crt`), keyFile: join(this.directory, `${name}.key`), trustedCaFile: join(this.directory, `${trustedAuthority}.crt`), clientCertAuth };
  }

  /**
   * Revokes the certificates `names` (made with `member`) of `authority`, and
   * returns the path of that authority's new certificate revocation list.
   */
  revocationList(authority: string, names: readonly string[]): string {
    const database = join(this.directory, `${authority}.index`);
    const configuration = join(this.directory, `${authority}.cnf`);
    writeFileSync(database, "");
    writeFileSync(join(this.directory, `${authority}.crlnumber`), "01\n");
    writeFileSync(configuration, ["[ca]", "default_ca = authority", "[authority]", `database = ${database}`, `crlnumber = ${join(this.directory, `${authority}.crlnumber`)}`, "default_md = sha256", "default_crl_days = 1", ""].join("\n"));
    for (const name of names) openssl(this.directory, ["ca", "-config", configuration, "-keyfile", `${authority}.key`, "-cert", `${authority}.crt`, "-revoke", `${name}.crt`]);
    const path = join(this.directory, `${authority}.crl`);
    openssl(this.directory, ["ca", "-config", configuration, "-keyfile", `${authority}.key`, "-cert", `${authority}.crt`, "-gencrl", "-out", path]);
    return path;
  }

  remove(): void {
    rmSync(this.directory, { recursive: true, force: true });
  }
}
