import { generateKeyPairSync, randomBytes, sign, X509Certificate } from "node:crypto";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";

/**
 * A self-signed server certificate, as etcd makes one for `--auto-tls`: an
 * ECDSA P-521 key, subject `O=etcd`, valid for a year from now, key usages
 * digital signature and key encipherment, extended usage server auth, and the
 * listen hosts as subject alternative names (IP addresses as IP SANs, other
 * names as DNS SANs).
 *
 * Node can make keys and signatures but not certificates, so the certificate
 * is written here in DER: a few ASN.1 shapes, for this one fixed layout.
 */

/** How long an automatic certificate is valid, as in etcd: 365 days. */
const validityMs = 365 * 24 * 60 * 60 * 1000;
/** Random serial numbers of 128 bits, as etcd draws them. */
const serialBytes = 16;

const oid = {
  ecdsaWithSha512: "1.2.840.10045.4.3.4",
  organization: "2.5.4.10",
  keyUsage: "2.5.29.15",
  extendedKeyUsage: "2.5.29.37",
  basicConstraints: "2.5.29.19",
  subjectAltName: "2.5.29.17",
  serverAuth: "1.3.6.1.5.5.7.3.1",
};

function encodeLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One DER element: tag, length, contents. */
function element(tag: number, ...contents: Buffer[]): Buffer {
  const body = Buffer.concat(contents);
  return Buffer.concat([Buffer.from([tag]), encodeLength(body.length), body]);
}

const sequence = (...items: Buffer[]): Buffer => element(0x30, ...items);
const set = (...items: Buffer[]): Buffer => element(0x31, ...items);
const octetString = (bytes: Buffer): Buffer => element(0x04, bytes);
const bitString = (bytes: Buffer, unusedBits = 0): Buffer => element(0x03, Buffer.from([unusedBits]), bytes);
const booleanTrue = Buffer.from([0x01, 0x01, 0xff]);

/** A non-negative INTEGER from big-endian bytes: minimal, with a zero byte when the high bit is set. */
function unsignedInteger(bytes: Buffer): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const minimal = bytes.subarray(start);
  return element(0x02, minimal[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), minimal]) : minimal);
}

function objectIdentifier(dotted: string): Buffer {
  const arcs = dotted.split(".").map(Number);
  const bytes = [arcs[0]! * 40 + arcs[1]!];
  for (const arc of arcs.slice(2)) {
    const base128 = [arc & 0x7f];
    for (let rest = Math.floor(arc / 128); rest > 0; rest = Math.floor(rest / 128)) base128.unshift((rest & 0x7f) | 0x80);
    bytes.push(...base128);
  }
  return element(0x06, Buffer.from(bytes));
}

/** UTCTime (YYMMDDHHMMSSZ) for years before 2050, GeneralizedTime after, as RFC 5280 requires. */
function time(date: Date): Buffer {
  const text = date.toISOString().replace(/[-:T]/g, "").replace(/\.\d+Z$/, "Z");
  return date.getUTCFullYear() < 2050 ? element(0x17, Buffer.from(text.slice(2), "ascii")) : element(0x18, Buffer.from(text, "ascii"));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return sequence(objectIdentifier(id), ...(critical ? [booleanTrue] : []), octetString(value));
}

/** IP SANs carry the address bytes (4 for IPv4, 16 for IPv6); other hosts are DNS names. */
function subjectAltNames(hosts: readonly string[]): Buffer {
  return sequence(...hosts.map((host) => (isIP(host) === 0 ? element(0x82, Buffer.from(host, "ascii")) : element(0x87, ipAddressBytes(host)))));
}

function ipAddressBytes(address: string): Buffer {
  if (isIP(address) === 4) return Buffer.from(address.split(".").map(Number));
  // An IPv6 address, its embedded IPv4 tail (::ffff:1.2.3.4) written as two groups.
  const text = address.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_, a, b, c, d) => `${((+a << 8) | +b).toString(16)}:${((+c << 8) | +d).toString(16)}`);
  const [head = "", tail = ""] = text.split("::");
  const groups = (part: string): number[] => (part === "" ? [] : part.split(":").map((group) => parseInt(group, 16)));
  const front = groups(head);
  const back = text.includes("::") ? groups(tail) : [];
  const all = [...front, ...new Array<number>(8 - front.length - back.length).fill(0), ...back];
  const bytes = Buffer.alloc(16);
  all.forEach((group, index) => bytes.writeUInt16BE(group, index * 2));
  return bytes;
}

export interface SelfSignedCertificate {
  /** PEM certificate. */
  certificate: string;
  /** PEM private key (SEC 1 "EC PRIVATE KEY", as etcd writes it). */
  privateKey: string;
}

/** Makes a self-signed certificate for `hosts` (host names or IP addresses, without ports). */
export function makeSelfSignedCertificate(hosts: readonly string[], now = new Date()): SelfSignedCertificate {
  const keys = generateKeyPairSync("ec", { namedCurve: "P-521" });
  const algorithm = sequence(objectIdentifier(oid.ecdsaWithSha512));
  const name = sequence(set(sequence(objectIdentifier(oid.organization), element(0x13, Buffer.from("etcd", "ascii")))));
  const extensions = [
    // digitalSignature (bit 0) and keyEncipherment (bit 2): 0b101 in the top bits, 5 bits unused.
    extension(oid.keyUsage, true, bitString(Buffer.from([0xa0]), 5)),
    extension(oid.extendedKeyUsage, false, sequence(objectIdentifier(oid.serverAuth))),
    extension(oid.basicConstraints, true, sequence()),
    ...(hosts.length > 0 ? [extension(oid.subjectAltName, false, subjectAltNames(hosts))] : []),
  ];
  const toBeSigned = sequence(
    element(0xa0, unsignedInteger(Buffer.from([2]))), // version 3
    unsignedInteger(randomBytes(serialBytes)),
    algorithm,
    name,
    sequence(time(now), time(new Date(now.getTime() + validityMs))),
    name,
    keys.publicKey.export({ type: "spki", format: "der" }),
    element(0xa3, sequence(...extensions)),
  );
  const signature = sign("sha512", toBeSigned, keys.privateKey);
  const der = sequence(toBeSigned, algorithm, bitString(signature));
  const certificate = `-----BEGIN CERTIFICATE-----\n${der.toString("base64").replace(/.{1,64}/g, "$&\n")}-----END CERTIFICATE-----\n`;
  // A certificate that Node cannot read back, or that its own key did not sign, is a bug here.
  const parsed = new X509Certificate(certificate);
  if (!parsed.verify(keys.publicKey)) throw new Error("self-signed certificate does not verify with its own key");
  return { certificate, privateKey: keys.privateKey.export({ type: "sec1", format: "pem" }).toString() };
}

/**
 * The certificate and key files of an automatic certificate in `directory`
 * (`cert.pem`, `key.pem`): kept from an earlier start when both exist, as
 * etcd keeps them, else made now. Returns their paths and whether they were made.
 */
export function ensureSelfSignedCertificate(directory: string, hosts: readonly string[]): { certFile: string; keyFile: string; created: boolean } {
  const certFile = join(directory, "cert.pem");
  const keyFile = join(directory, "key.pem");
  if (existsSync(certFile) && existsSync(keyFile)) return { certFile, keyFile, created: false };
  mkdirSync(directory, { recursive: true, mode: 0o700 });
  const made = makeSelfSignedCertificate(hosts);
  writeFileSync(certFile, made.certificate, { mode: 0o644 });
  writeFileSync(keyFile, made.privateKey, { mode: 0o600 });
  return { certFile, keyFile, created: true };
}
