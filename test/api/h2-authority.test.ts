// The :authority rewriting that lets Go clients dialled with http:// URLs reach
// tetcd: HPACK Huffman coding against RFC 7541's examples, the header block
// rewrite, and etcdctl with URL endpoints and --cluster end to end.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { AuthorityRewriter, huffmanDecode, huffmanEncode, rewriteAuthority } from "../../src/api/h2-authority.js";
import { etcdctl, hasCommand, startTetcd, type ServerProcess } from "../support/processes.js";

/** RFC 7541, appendix C.4: strings and their Huffman codes. */
const rfcExamples: Array<[string, string]> = [
  ["www.example.com", "f1e3c2e5f23a6ba0ab90f4ff"],
  ["no-cache", "a8eb10649cbf"],
  ["custom-key", "25a849e95ba97d7f"],
  ["custom-value", "25a849e95bb8e8b4bf"],
];

/** A literal field with incremental indexing and an indexed name, its value Huffman-coded. */
function literalField(nameIndex: number, value: string): Buffer {
  const coded = huffmanEncode(Buffer.from(value));
  assert.ok(coded.length < 127);
  return Buffer.from([0x40 | nameIndex, 0x80 | coded.length, ...coded]);
}

describe("HPACK Huffman coding", () => {
  test("encodes and decodes RFC 7541's examples", () => {
    for (const [text, hex] of rfcExamples) {
      assert.equal(huffmanEncode(Buffer.from(text)).toString("hex"), hex, text);
      assert.equal(huffmanDecode(Buffer.from(hex, "hex")).toString(), text, hex);
    }
  });

  test("round-trips every byte value", () => {
    const all = Buffer.from([...Array(256).keys()]);
    assert.deepEqual(huffmanDecode(huffmanEncode(all)), all);
  });

  test("refuses bad padding and an end-of-string code", () => {
    assert.throws(() => huffmanDecode(Buffer.from([0xf1, 0xe3, 0xc2, 0x00])));
    assert.throws(() => huffmanDecode(Buffer.from([0xff, 0xff, 0xff, 0xff])));
  });
});

describe(":authority rewriting", () => {
  test("a URL-shaped :authority becomes host:port; the fields around it are kept byte for byte", () => {
    const before = Buffer.from([0x83, 0x86]); // :method POST, :scheme http (static table)
    const path = literalField(4, "/etcdserverpb.KV/Range");
    const block = Buffer.concat([before, literalField(1, "http://127.0.0.1:2379"), path]);
    const rewritten = rewriteAuthority(block);
    const expected = Buffer.concat([before, Buffer.from([0x41, 14]), Buffer.from("127.0.0.1:2379"), path]);
    assert.deepEqual(rewritten, expected);
  });

  test("a plain host:port :authority and other fields leave the block untouched", () => {
    const block = Buffer.concat([Buffer.from([0x83]), literalField(1, "127.0.0.1:2379"), literalField(4, "http://not-an-authority/")]);
    assert.equal(rewriteAuthority(block), block);
  });

  test("HEADERS frames are rewritten across chunk boundaries; the preface and other frames pass through", () => {
    const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    const settings = Buffer.from([0, 0, 0, 0x4, 0, 0, 0, 0, 0]);
    const block = literalField(1, "https://10.0.0.1:2379");
    const headers = Buffer.concat([Buffer.from([0, 0, block.length, 0x1, 0x4 | 0x1, 0, 0, 0, 1]), block]);
    const input = Buffer.concat([preface, settings, headers]);
    const rewriter = new AuthorityRewriter();
    const out = Buffer.concat([...input].map((byte) => rewriter.push(Buffer.from([byte]))));
    const newBlock = Buffer.concat([Buffer.from([0x41, 13]), Buffer.from("10.0.0.1:2379")]);
    assert.deepEqual(out, Buffer.concat([preface, settings, Buffer.from([0, 0, newBlock.length, 0x1, 0x5, 0, 0, 0, 1]), newBlock]));
  });
});

const skip = hasCommand("etcdctl") ? false : "etcdctl is not installed";

describe("etcdctl with http:// endpoints", { skip, timeout: 60_000 }, () => {
  let server: ServerProcess | undefined;
  before(async () => {
    server = await startTetcd();
  });
  after(async () => {
    await server?.stop();
  });

  test("put and get through an http:// URL endpoint", () => {
    const url = `http://${server!.endpoint}`;
    assert.equal(etcdctl(url, ["put", "url-key", "v"]).stdout, "OK\n");
    assert.equal(etcdctl(url, ["get", "url-key", "--print-value-only"]).stdout, "v\n");
  });

  test("endpoint status, health and hashkv with --cluster reach the member at its advertised URL", () => {
    for (const args of [["endpoint", "status", "--cluster"], ["endpoint", "health", "--cluster"], ["endpoint", "hashkv", "--cluster"]]) {
      const result = etcdctl(server!.endpoint, args);
      assert.equal(result.status, 0, `${args.join(" ")}: ${result.stderr}`);
      assert.match(result.stdout + result.stderr, new RegExp(`http://${server!.endpoint.replace(/\./g, "\\.")}`));
    }
  });
});
