import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { test } from "node:test";
import { startEtcd } from "../../src/index.js";
import { temporaryDirectory } from "../support/processes.js";

test("--enable-grpc-gateway=false turns the /v3 paths off and keeps /health and /version", { timeout: 30_000 }, async () => {
  const dataDir = temporaryDirectory("tetcd-gateway-off");
  const etcd = await startEtcd({ args: ["--data-dir", dataDir, "--listen-client-urls", "http://127.0.0.1:0", "--listen-peer-urls", "http://127.0.0.1:0", "--enable-grpc-gateway=false"] });
  try {
    const base = `http://${etcd.clientAddresses[0]}`;
    assert.equal((await fetch(`${base}/v3/kv/range`, { method: "POST", body: "{}" })).status, 404);
    assert.equal((await fetch(`${base}/health`)).status, 200);
    assert.equal((await fetch(`${base}/version`)).status, 200);
  } finally {
    await etcd.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
