import assert from "node:assert/strict";
import { test } from "node:test";
import { parseJsonExactly, quoteWideIntegers } from "../../src/api/exact-json.js";

test("integers beyond 2^53 are read as their digits; everything else as JSON.parse reads it", () => {
  assert.deepEqual(parseJsonExactly('{"ID":5685691444039672149,"TTL":60}'), { ID: "5685691444039672149", TTL: 60 });
  assert.deepEqual(parseJsonExactly("[-9223372036854775808, 9007199254740991, 9007199254740992]"), ["-9223372036854775808", 9007199254740991, "9007199254740992"]);
  assert.deepEqual(parseJsonExactly('{"a":1.5e300,"b":-0.25,"c":1e2}'), { a: 1.5e300, b: -0.25, c: 100 });
  assert.deepEqual(parseJsonExactly('{"s":"12345678901234567890","t":"say \\"99999999999999999999\\"","u":99999999999999999999}'), { s: "12345678901234567890", t: 'say "99999999999999999999"', u: "99999999999999999999" });
});

test("text without wide integers is handed to JSON.parse untouched, and bad JSON is still refused", () => {
  const text = '{"key":"YQ==","limit":10}';
  assert.equal(quoteWideIntegers(text), text);
  assert.throws(() => parseJsonExactly('{"ID":5685691444039672149,'), SyntaxError);
  assert.throws(() => parseJsonExactly('{"unterminated":"12345678901234567890'), SyntaxError);
});
