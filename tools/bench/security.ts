import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The longest one openssl or etcdctl run may take. */
const commandTimeoutMs = 20_000;

/** Client TLS for a benchmark: a throwaway CA and a server certificate for 127.0.0.1, made with openssl. */
export interface BenchTls {
  caFile: string;
  certFile: string;
  keyFile: string;
  remove(): void;
}

/** The user every benchmark client authenticates as when auth is on. */
export const benchUser = { name: "root", password: "bench-password" };

/** What a benchmark server is started with beyond plain HTTP. */
export interface BenchSecurity {
  tls?: BenchTls;
  /** Enable auth (simple tokens) once the server is up, with `benchUser` as root. */
  auth?: boolean;
}

export function makeBenchTls(): BenchTls {
  const directory = mkdtempSync(join(tmpdir(), "bench-tls-"));
  const openssl = (args: string[]): void => {
    execFileSync("openssl", args, { cwd: directory, timeout: commandTimeoutMs, stdio: ["ignore", "ignore", "pipe"] });
  };
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  openssl(["req", "-x509", ...ec, "-subj", "/CN=bench-ca", "-days", "1", "-keyout", "ca.key", "-out", "ca.crt", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
  writeFileSync(join(directory, "server.ext"), ["basicConstraints=CA:FALSE", "keyUsage=critical,digitalSignature,keyEncipherment", "extendedKeyUsage=serverAuth,clientAuth", "subjectAltName=IP:127.0.0.1,DNS:localhost", ""].join("\n"));
  openssl(["req", "-new", ...ec, "-subj", "/CN=bench-server", "-keyout", "server.key", "-out", "server.csr"]);
  openssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1", "-out", "server.crt", "-extfile", "server.ext"]);
  return {
    caFile: join(directory, "ca.crt"),
    certFile: join(directory, "server.crt"),
    keyFile: join(directory, "server.key"),
    remove: () => rmSync(directory, { recursive: true, force: true }),
  };
}

/** The client URL scheme and the server flags for `security`. */
export function clientTlsArgs(security: BenchSecurity): { scheme: "http" | "https"; args: string[] } {
  if (security.tls === undefined) return { scheme: "http", args: [] };
  return { scheme: "https", args: ["--cert-file", security.tls.certFile, "--key-file", security.tls.keyFile] };
}

/** Makes `benchUser` root and enables auth, through etcdctl, on the cluster behind `endpoint`. */
export function enableBenchAuth(endpoint: string, security: BenchSecurity): void {
  const tlsArgs = security.tls === undefined ? [] : ["--cacert", security.tls.caFile];
  const scheme = security.tls === undefined ? "http" : "https";
  for (const args of [["user", "add", `${benchUser.name}:${benchUser.password}`], ["role", "add", "root"], ["user", "grant-role", benchUser.name, "root"], ["auth", "enable"]]) {
    // A cluster just started may still be electing its leader: etcdctl is tried again for a while.
    const deadline = Date.now() + commandTimeoutMs;
    for (;;) {
      const result = spawnSync("etcdctl", [`--endpoints=${scheme}://${endpoint}`, ...tlsArgs, ...args], { encoding: "utf8", timeout: commandTimeoutMs, env: { ...process.env, ETCDCTL_API: "3" } });
      if (result.status === 0) break;
      if (Date.now() > deadline) throw new Error(`etcdctl ${args.join(" ")} failed: ${result.stderr}`);
      spawnSync("sleep", ["0.2"]);
    }
  }
}
