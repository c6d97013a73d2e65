// The normalization of the e2e harness replaces only the fields allowed to
// differ between etcd and tetcd; anything else must still show up as a difference.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { kindOf, normalize, normalizeProtobuf, type CtlResult } from "./harness.js";

const out = (stdout: string | Buffer, stderr = "", status = 0): CtlResult => ({ status, stdout: Buffer.isBuffer(stdout) ? stdout : Buffer.from(stdout), stderr });

describe("e2e harness normalization", { timeout: 10_000 }, () => {
  test("json headers: ids and term replaced, revision kept", () => {
    const a = normalize(out('{"header":{"cluster_id":1,"member_id":2,"revision":5,"raft_term":3},"count":1}\n'), "127.0.0.1:1", "json");
    const b = normalize(out('{"header":{"cluster_id":9,"member_id":8,"revision":5,"raft_term":7},"count":1}\n'), "127.0.0.1:2", "json");
    const c = normalize(out('{"header":{"cluster_id":9,"member_id":8,"revision":6,"raft_term":7},"count":1}\n'), "127.0.0.1:2", "json");
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
  });

  test("protobuf: header fields 1, 2, 4 dropped, revision and body kept", () => {
    // RangeResponse{header{cluster_id, member_id, revision, raft_term}, count}
    const encode = (cluster: number, member: number, revision: number, term: number, count: number): Buffer =>
      Buffer.from([0x0a, 8, 0x08, cluster, 0x10, member, 0x18, revision, 0x20, term, 0x20, count]);
    assert.equal(normalizeProtobuf(encode(1, 2, 3, 4, 1)), normalizeProtobuf(encode(5, 6, 3, 7, 1)));
    assert.notEqual(normalizeProtobuf(encode(1, 2, 3, 4, 1)), normalizeProtobuf(encode(1, 2, 4, 4, 1)));
    assert.notEqual(normalizeProtobuf(encode(1, 2, 3, 4, 1)), normalizeProtobuf(encode(1, 2, 3, 4, 2)));
  });

  test("stderr: log timestamps and client ids dropped, the error kept", () => {
    const line = (ts: string, client: string, error: string): string =>
      `{"level":"warn","ts":"${ts}","caller":"clientv3/retry_interceptor.go:62","msg":"retrying of unary invoker failed","target":"endpoint://client-${client}/127.0.0.1:1","attempt":0,"error":"${error}"}\nError: ${error}\n`;
    const a = normalize(out("", line("2026-01-01T00:00:00.000Z", "0b1c-aa", "x"), 1), "127.0.0.1:1", "text");
    const b = normalize(out("", line("2026-01-02T00:00:00.000Z", "77ee-bb", "x"), 1), "127.0.0.1:1", "text");
    const c = normalize(out("", line("2026-01-02T00:00:00.000Z", "77ee-bb", "y"), 1), "127.0.0.1:1", "text");
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
  });

  test("endpoint status table: sizes, ids and indexes masked; version and leadership kept", () => {
    const table = (id: string, version: string, size: string, leader: string): string =>
      `+--+\n| ENDPOINT | ID | VERSION | DB SIZE | IS LEADER | IS LEARNER | RAFT TERM | RAFT INDEX | RAFT APPLIED INDEX | ERRORS |\n+--+\n| 127.0.0.1:1 | ${id} | ${version} | ${size} | ${leader} | false | 2 | 10 | 10 |  |\n+--+\n`;
    const kind = kindOf({ args: ["endpoint", "status", "-w", "table"] });
    assert.equal(kind, "status-table");
    const a = normalize(out(table("abc", "3.4.23", "20 kB", "true")), "127.0.0.1:1", kind);
    assert.deepEqual(a, normalize(out(table("def0", "3.4.23", "4.1 kB", "true")), "127.0.0.1:1", kind));
    assert.notDeepEqual(a, normalize(out(table("abc", "3.5.0", "20 kB", "true")), "127.0.0.1:1", kind));
    assert.notDeepEqual(a, normalize(out(table("abc", "3.4.23", "20 kB", "false")), "127.0.0.1:1", kind));
  });

  test("endpoint status json: sizes and indexes removed, version and errors kept", () => {
    const status = (size: number, index: number, version: string): string =>
      `[{"Endpoint":"127.0.0.1:1","Status":{"header":{"cluster_id":1,"member_id":2,"revision":1,"raft_term":2},"version":"${version}","dbSize":${size},"leader":2,"raftIndex":${index},"raftTerm":2,"raftAppliedIndex":${index},"dbSizeInUse":${size}}}]\n`;
    const kind = kindOf({ args: ["endpoint", "status", "-w", "json"] });
    const a = normalize(out(status(20480, 10, "3.4.23")), "127.0.0.1:1", kind);
    assert.deepEqual(a, normalize(out(status(4096, 3, "3.4.23")), "127.0.0.1:1", kind));
    assert.notDeepEqual(a, normalize(out(status(20480, 10, "3.4.22")), "127.0.0.1:1", kind));
  });

  test("endpoint health: the duration masked, the verdict kept", () => {
    const kind = kindOf({ args: ["endpoint", "health"] });
    const a = normalize(out("", "127.0.0.1:1 is healthy: successfully committed proposal: took = 1.5ms\n"), "127.0.0.1:1", kind);
    assert.deepEqual(a, normalize(out("", "127.0.0.1:2 is healthy: successfully committed proposal: took = 12.345µs\n"), "127.0.0.1:2", kind));
    assert.notDeepEqual(a, normalize(out("", "127.0.0.1:1 is unhealthy: failed to commit proposal: took = 1.5ms\n"), "127.0.0.1:1", kind));
  });
});
