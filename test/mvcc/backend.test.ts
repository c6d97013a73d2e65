import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, test } from "node:test";
import { Backend } from "../../src/mvcc/backend.js";

let directory: string;
let backend: Backend;

function open(): Backend {
  return new Backend({ path: join(directory, "db"), mapSizeBytes: 64 * 1024 * 1024 });
}

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), "tetcd-backend-test-"));
  backend = open();
});

afterEach(async () => {
  await backend.close().catch(() => undefined);
  rmSync(directory, { recursive: true, force: true });
});

const key = (text: string): Buffer => Buffer.from(text);

test("a write transaction's changes are visible inside it and after it, and survive reopening", async () => {
  const result = backend.write(() => {
    backend.put("key", key("a"), key("1"));
    assert.equal(backend.get("key", key("a"))?.toString(), "1");
    backend.put("meta", key("a"), key("meta"));
    backend.put("key", key("b"), key("2"));
    backend.delete("key", key("b"));
    return 42;
  });
  assert.equal(result, 42);
  assert.equal(backend.get("key", key("a"))?.toString(), "1");
  assert.equal(backend.get("key", key("b")), undefined);
  assert.equal(backend.get("meta", key("a"))?.toString(), "meta", "buckets are separate");
  await backend.close();
  backend = open();
  assert.equal(backend.get("key", key("a"))?.toString(), "1");
  assert.equal(backend.get("key", key("b")), undefined);
});

test("a write transaction that throws changes nothing", async () => {
  backend.write(() => backend.put("key", key("kept"), key("1")));
  assert.throws(() =>
    backend.write(() => {
      backend.put("key", key("kept"), key("2"));
      backend.put("key", key("lost"), key("x"));
      throw new Error("apply failed");
    }),
  /apply failed/);
  assert.equal(backend.get("key", key("kept"))?.toString(), "1");
  assert.equal(backend.get("key", key("lost")), undefined);
  await backend.flushed();
  await backend.close();
  backend = open();
  assert.equal(backend.get("key", key("kept"))?.toString(), "1");
  assert.equal(backend.get("key", key("lost")), undefined);
});

test("nested writes join the outer transaction; writes outside one are refused", () => {
  backend.write(() => {
    backend.put("key", key("outer"), key("1"));
    backend.write(() => backend.put("key", key("inner"), key("2")));
  });
  assert.equal(backend.get("key", key("inner"))?.toString(), "2");
  assert.throws(() => backend.put("key", key("x"), key("y")), /outside a write transaction/);
  assert.throws(() => backend.delete("key", key("outer")), /outside a write transaction/);
});

test("range and forEach list records in key order within [start, end) once flushed", async () => {
  backend.write(() => {
    for (const name of ["d", "a", "c", "b", "e"]) backend.put("key", key(name), key(name.toUpperCase()));
  });
  await backend.flushed();
  assert.deepEqual(backend.range("key", key("b"), key("e")).map((record) => record.key.toString()), ["b", "c", "d"]);
  assert.deepEqual(backend.range("key", undefined, undefined, 2).map((record) => record.value.toString()), ["A", "B"]);
  const seen: string[] = [];
  backend.forEach("key", (name) => seen.push(name.toString()));
  assert.deepEqual(seen, ["a", "b", "c", "d", "e"]);
});
