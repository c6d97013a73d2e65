// The real etcdctl 3.4 against a fresh etcd and a fresh tetcd: the same put,
// get and del commands, in the same order, must print the same thing (header
// ids and raft term aside) and exit with the same status.
import { compareScript, type Step } from "./harness.js";

const E = ""; // the empty key

/** Every step runs on both servers; revisions must stay in lockstep, so order matters. */
const script: Step[] = [
  // put: a fresh key, overwrites, --prev-kv, --ignore-value, --ignore-lease, all output formats.
  { args: ["put", "a", "1"] },
  { args: ["put", "b", "2"] },
  { args: ["put", "c", "3"] },
  { args: ["put", "d", "4"] },
  { args: ["put", "dir/x", "10"] },
  { args: ["put", "dir/y", "20"] },
  { args: ["put", "dir/z", "30"] },
  { args: ["put", "a", "11", "--prev-kv"] },
  { args: ["put", "b", "22", "--prev-kv", "-w", "json"] },
  { args: ["put", "new", "n", "--prev-kv"] },
  { args: ["put", "new", "n2", "--prev-kv", "-w", "fields"] },
  { args: ["put", "new", "n3", "--prev-kv", "-w", "protobuf"] },
  { args: ["put", "sp", "hello world", "-w", "json"] },
  { args: ["put", "stdin-key"], input: "value from stdin" },
  { args: ["put", "a", "--ignore-value"] },
  { args: ["put", "a", "--ignore-value", "--prev-kv", "-w", "json"] },
  { args: ["put", "a", "111", "--ignore-lease"] },
  { args: ["put", "a", "--ignore-value", "--ignore-lease"] },
  { args: ["put", "zz", "last", "--lease=0"] },
  // put errors: --ignore-value on a missing key, an unknown lease, bad usage, the empty key.
  { args: ["put", "missing", "--ignore-value"] },
  { args: ["put", "missing", "--ignore-lease"] },
  { args: ["put", "missing", "--ignore-value", "-w", "json"] },
  { args: ["put", "a", "x", "--lease=1234abcd"] },
  { args: ["put", "a", "x", "--lease=7fffffffffffffff"] },
  { args: ["put", "a", "x", "--lease=zzz"] },
  { args: ["put", "a", "v", "--ignore-value"] },
  { args: ["put"] },
  { args: ["put", E, "v"] },
  // get: single keys, ranges, --prefix, --from-key, the empty key.
  { args: ["get", "a"] },
  { args: ["get", "nosuch"] },
  { args: ["get", "nosuch", "-w", "json"] },
  { args: ["get", "a", "d"] },
  { args: ["get", "dir/", "--prefix"] },
  { args: ["get", "dir/", "--prefix", "-w", "json"] },
  { args: ["get", "dir/", "--prefix", "-w", "fields"] },
  { args: ["get", "dir/", "--prefix", "-w", "protobuf"] },
  { args: ["get", "b", "--from-key"] },
  { args: ["get", E, "--from-key", "-w", "json"] },
  { args: ["get", E, "--prefix", "--keys-only"] },
  { args: ["get", E, "--prefix", "--print-value-only"] },
  { args: ["get", "a", "--prefix", "--hex"] },
  { args: ["get", E] },
  // --rev: past, current, future, 0.
  { args: ["get", "a", "--rev=2"] },
  { args: ["get", "a", "--rev=2", "-w", "json"] },
  { args: ["get", E, "--prefix", "--rev=5", "--keys-only"] },
  { args: ["get", "a", "--rev=0", "-w", "json"] },
  { args: ["get", "a", "--rev=1000"] },
  { args: ["get", "a", "--rev=1000", "-w", "json"] },
  // --limit, --sort-by, --order.
  { args: ["get", E, "--prefix", "--limit=2"] },
  { args: ["get", E, "--from-key", "--limit=3", "-w", "json"] },
  { args: ["get", E, "--prefix", "--limit=-1", "--keys-only"] },
  { args: ["get", E, "--prefix", "--sort-by=KEY", "--order=DESCEND", "--limit=3"] },
  { args: ["get", E, "--prefix", "--sort-by=VALUE", "--order=DESCEND"] },
  { args: ["get", E, "--prefix", "--sort-by=VALUE", "--order=ASCEND", "-w", "json"] },
  { args: ["get", E, "--prefix", "--sort-by=CREATE", "--order=DESCEND", "--keys-only"] },
  { args: ["get", E, "--prefix", "--sort-by=MODIFY", "--order=DESCEND", "--print-value-only"] },
  { args: ["get", E, "--prefix", "--sort-by=VERSION", "--order=DESCEND", "--limit=2", "-w", "json"] },
  { args: ["get", E, "--prefix", "--sort-by=MODIFY"] },
  { args: ["get", E, "--prefix", "--order=DESCEND", "-w", "protobuf"] },
  { args: ["get", "a", "--sort-by=BOGUS"] },
  { args: ["get", "a", "--order=BOGUS"] },
  // --consistency.
  { args: ["get", "a", "--consistency=s"] },
  { args: ["get", E, "--prefix", "--consistency=s", "-w", "json"] },
  { args: ["get", E, "--prefix", "--consistency=l", "-w", "fields"] },
  { args: ["get", "a", "--consistency=x"] },
  // etcdctl 3.4 has no --count-only and no --min/max-mod/create-rev flags (3.5
  // added them): both runs must fail the same way, before reaching a server.
  // The server side of those options is compared over gRPC in range-options.test.ts.
  { args: ["get", E, "--prefix", "--count-only"] },
  { args: ["get", E, "--prefix", "--min-mod-rev=5", "--max-mod-rev=9"] },
  { args: ["get", E, "--prefix", "--min-create-rev=3", "--max-create-rev=6"] },
  // get usage errors.
  { args: ["get", "a", "b", "--prefix"] },
  { args: ["get", "a", "--from-key", "--prefix"] },
  { args: ["get"] },
  // del: single, missing, --prev-kv, --prefix, --from-key, ranges, the empty key.
  { args: ["del", "nosuch"] },
  { args: ["del", "nosuch", "-w", "json"] },
  { args: ["del", "d"] },
  { args: ["del", "dir/x", "--prev-kv"] },
  { args: ["del", "dir/", "--prefix", "--prev-kv", "-w", "json"] },
  { args: ["del", "dir/", "--prefix"] },
  { args: ["put", "r1", "x"] },
  { args: ["put", "r2", "y"] },
  { args: ["put", "r3", "z"] },
  { args: ["del", "r1", "r3", "--prev-kv"] },
  { args: ["del", "r", "--prefix", "-w", "fields"] },
  { args: ["del", "sp", "--from-key", "--prev-kv"] },
  { args: ["put", "x1", "1"] },
  { args: ["del", "x", "--from-key", "-w", "protobuf"] },
  { args: ["del", E] },
  { args: ["del", "a", "--prefix", "--from-key"] },
  { args: ["del"] },
  // What is left, at which revisions.
  { args: ["get", E, "--from-key", "-w", "json"] },
  { args: ["get", "a", "--rev=8", "-w", "json"] },
  { args: ["get", "dir/", "--prefix", "--rev=9"] },
];

compareScript("etcdctl put/get/del: tetcd prints what etcd prints", script, 90_000);
