// `etcdctl txn` reads its transaction from stdin: compares, one per line, up to
// a blank line; then the success requests up to a blank line; then the failure
// requests up to a blank line (or EOF). With -i it first prints a prompt for
// each of the three parts. The same transactions go to a fresh etcd and a fresh
// tetcd; outputs must match (header ids and raft term aside).
import { compareScript, type Step } from "./harness.js";

/** Builds the stdin of `etcdctl txn` from its three parts. */
function txn(compares: string[], success: string[], failure: string[]): string {
  return [...compares, "", ...success, "", ...failure, ""].join("\n") + "\n";
}

const script: Step[] = [
  { args: ["put", "k1", "v1"] }, // rev 2
  { args: ["put", "k2", "v2"] }, // rev 3
  { args: ["put", "k1", "v1b"] }, // rev 4
  // value compares.
  { args: ["txn"], input: txn(['value("k1") = "v1b"'], ["put k3 v3", "get k1"], ["put k4 v4"]) },
  { args: ["txn"], input: txn(['value("k1") = "nope"'], ["put k3 v3x"], ["put k4 v4", "get k2", "del k2 --prev-kv"]) },
  { args: ["txn", "-w", "json"], input: txn(['value("k1") != "x"', 'value("k3") > "v2"', 'value("k4") < "v5"'], ["get k --prefix"], []) },
  { args: ["txn"], input: txn(['value("absent") = ""'], ["put s1 y"], ["put s1 n"]) },
  // version compares (a missing key has version 0).
  { args: ["txn", "-w", "json"], input: txn(['version("k1") = "2"', 'version("k2") = "0"'], ["get k --prefix --keys-only"], ["put never v"]) },
  { args: ["txn", "-w", "fields"], input: txn(['version("k1") > "5"'], ["put never v"], ["put k6 v6 --prev-kv", "get k6"]) },
  // create and mod revision compares.
  { args: ["txn", "-w", "json"], input: txn(['create("k1") = "2"', 'mod("k1") = "4"'], ["del k3 --prev-kv", "get k1 --rev=2"], ["put k5 v5"]) },
  { args: ["txn", "-w", "protobuf"], input: txn(['mod("k1") < "4"'], ["put never v"], ["get k1", "put k1 v1c --prev-kv"]) },
  { args: ["txn"], input: txn(['create("k2") > "0"'], ["put never v"], ["get k1 --print-value-only", "del k --prefix --prev-kv"]) },
  // several compares: all must hold.
  { args: ["txn", "-w", "json"], input: txn(['create("k1") = "0"', 'value("s1") = "y"', 'mod("s1") > "1"'], ["put k7 v7"], ["put k8 v8"]) },
  // no compares: the success branch runs; empty branches.
  { args: ["txn"], input: txn([], ["put k9 v9", "put k10 v10", "get k --prefix --limit=2 --sort-by=KEY --order=DESCEND"], []) },
  { args: ["txn"], input: txn([], [], []) },
  { args: ["txn", "-w", "json"], input: txn(['value("k9") = "no"'], [], []) },
  // the interactive form: prompts on stdout, then the result.
  { args: ["txn", "-i"], input: txn(['create("k1") = "2"'], ["get k1 --rev=2", "put k11 v11"], ["get k1"]) },
  { args: ["txn", "-i", "-w", "json"], input: txn(['value("k1") > "v"'], [], ["put never v"]) },
  { args: ["txn", "--interactive"], input: txn(['version("k11") = "7"'], ["put never v"], ["del k11 --prev-kv"]) },
  // errors the server reports.
  { args: ["txn"], input: txn([], ["put dup v", "put dup w"], []) },
  { args: ["txn"], input: txn([], ["get k1 --rev=1000"], []) },
  { args: ["txn"], input: txn([], ["put k1 v --lease=123"], []) },
  { args: ["txn"], input: txn([], ["put missing --ignore-value"], []) },
  { args: ["txn", "-w", "json"], input: txn([], ["put k1 --ignore-value", "put s1 z --ignore-lease"], []) },
  { args: ["txn"], input: txn([], ["put dup2 v", "del dup2"], []) },
  // errors etcdctl reports before sending anything.
  { args: ["txn"], input: txn(['bogus("k1") = "1"'], [], []) },
  { args: ["txn"], input: txn(['version("k1") = "abc"'], [], []) },
  { args: ["txn"], input: txn([], ["frob k1"], []) },
  { args: ["txn"], input: "" },
  { args: ["txn", "extra"], input: txn([], [], []) },
  // the end state.
  { args: ["get", "", "--from-key", "-w", "json"] },
];

compareScript("etcdctl txn from stdin: tetcd prints what etcd prints", script, 60_000);
