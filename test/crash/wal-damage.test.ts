import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readdirSync, readFileSync, rmSync, statSync, truncateSync, unlinkSync, writeFileSync } from "node:fs";
import * as net from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import { PutRequestSchema, PutResponseSchema } from "../../src/gen/etcdserverpb/rpc_pb.js";
import { decodeRecord } from "../../src/wal/record.js";
import { EtcdClient } from "../support/client.js";
import { freePort, startTetcd, temporaryDirectory, tetcdBin } from "../support/processes.js";
import { assertPresent, populate, type Put } from "../support/puts.js";

const testTimeoutMs = 60_000;
const refusedStartTimeoutMs = 15_000;

function lastSegment(dataDir: string): string {
  const directory = join(dataDir, "member", "wal");
  const segments = readdirSync(directory).filter((name) => name.endsWith(".wal")).sort();
  assert.ok(segments.length > 0, "the WAL has a segment");
  return join(directory, segments[segments.length - 1]!);
}

/** True when every byte from `offset` on is zero: the preallocated space of a segment in use. */
function zeroFrom(bytes: Uint8Array, offset: number): boolean {
  return bytes.subarray(offset).every((byte) => byte === 0);
}

/** Offsets of the records of a segment file, up to its preallocated zeros; fails on any damaged record. */
function recordOffsets(bytes: Uint8Array): number[] {
  const offsets: number[] = [];
  let offset = 0;
  while (offset < bytes.length && !zeroFrom(bytes, offset)) {
    const result = decodeRecord(bytes, offset);
    assert.equal(result.kind, "record", `record at offset ${offset} of ${bytes.length}`);
    if (result.kind !== "record") break;
    offsets.push(offset);
    offset = result.next;
  }
  return offsets;
}

/** Starts tetcd and reports whether it exited (with its code and output) or came up listening (then kills it). */
async function startOutcome(dataDir: string): Promise<{ exitCode: number | null; listened: boolean; output: string }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const peer = `http://127.0.0.1:${await freePort()}`;
  const args = [tetcdBin, "--data-dir", dataDir, "--listen-client-urls", url, "--advertise-client-urls", url, "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer];
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  try {
    const deadline = Date.now() + refusedStartTimeoutMs;
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) break;
      const listening = await new Promise<boolean>((resolve) => {
        const socket = net.connect(port, "127.0.0.1");
        socket.once("connect", () => {
          socket.destroy();
          resolve(true);
        });
        socket.once("error", () => resolve(false));
      });
      if (listening) return { exitCode: null, listened: true, output };
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 1000))]);
    return { exitCode: child.exitCode, listened: false, output };
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await exited;
    }
  }
}

test("a WAL whose last record is torn starts, serves everything before it, and keeps working", { timeout: testTimeoutMs }, async () => {
  const dataDir = temporaryDirectory("tetcd-torn");
  try {
    const puts = await populate(dataDir, 40, "torn", "SIGTERM");
    const segment = lastSegment(dataDir);
    const bytes = readFileSync(segment);
    const offsets = recordOffsets(bytes);
    const lastOffset = offsets[offsets.length - 1]!;
    const recordsEnd = (decodeRecord(bytes, lastOffset) as { next: number }).next;
    truncateSync(segment, recordsEnd - 3);

    const server = await startTetcd({ dataDir });
    const client = new EtcdClient(server.endpoint);
    let later: Put;
    try {
      await assertPresent(client, puts.slice(0, -1));
      // The torn bytes are gone: the segment is whole records again, the torn one cut at its start.
      const after = readFileSync(segment);
      const afterOffsets = recordOffsets(after);
      assert.deepEqual(afterOffsets.slice(0, offsets.length - 1), offsets.slice(0, -1));
      assert.ok(afterOffsets.includes(lastOffset), "new records start where the torn one did");
      const result = await client.kv.call("put", PutRequestSchema, { key: Buffer.from("torn/after"), value: Buffer.from("after") }, PutResponseSchema);
      assert.ok(result.ok);
      later = { key: "torn/after", value: "after", revision: Number(result.response.header!.revision) };
      assert.ok(later.revision > puts[puts.length - 2]!.revision, "revisions continue after the last served put");
    } finally {
      client.close();
      await server.stop("SIGKILL");
    }
    // Writes after the repair survive a crash too.
    const again = await startTetcd({ dataDir });
    const againClient = new EtcdClient(again.endpoint);
    try {
      await assertPresent(againClient, [...puts.slice(0, -1), later]);
      recordOffsets(readFileSync(lastSegment(dataDir)));
    } finally {
      againClient.close();
      await again.stop();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test("a damaged byte in the middle of a WAL segment makes tetcd refuse to start, naming the file and offset", { timeout: testTimeoutMs }, async () => {
  const dataDir = temporaryDirectory("tetcd-corrupt");
  try {
    await populate(dataDir, 40, "corrupt", "SIGKILL");
    const segment = lastSegment(dataDir);
    const bytes = readFileSync(segment);
    const offsets = recordOffsets(bytes);
    const middle = offsets[Math.floor(offsets.length / 2)]!;
    const damaged = Buffer.from(bytes);
    damaged[middle + 9 + 5] ^= 0x40; // a payload byte of the middle record
    writeFileSync(segment, damaged);

    const outcome = await startOutcome(dataDir);
    assert.equal(outcome.listened, false, `tetcd served a corrupt WAL:\n${outcome.output}`);
    assert.ok(outcome.exitCode !== null && outcome.exitCode !== 0, `exit code ${outcome.exitCode}:\n${outcome.output}`);
    assert.ok(outcome.output.includes(segment), `the message names ${segment}:\n${outcome.output}`);
    assert.match(outcome.output, new RegExp(`offset ${middle}\\b`), `the message names offset ${middle}`);
    assert.equal(statSync(segment).size, bytes.length, "the damaged WAL is left as it was");
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test("a damaged length field in the middle of the last WAL segment makes tetcd refuse to start", { timeout: testTimeoutMs }, async () => {
  const dataDir = temporaryDirectory("tetcd-corrupt-length");
  try {
    await populate(dataDir, 40, "length", "SIGKILL");
    const segment = lastSegment(dataDir);
    const bytes = readFileSync(segment);
    const offsets = recordOffsets(bytes);
    const middle = offsets[Math.floor(offsets.length / 2)]!;
    const damaged = Buffer.from(bytes);
    damaged[middle + 2] ^= 0x10; // the record now claims ~1 MiB, past the end of the file
    writeFileSync(segment, damaged);

    const outcome = await startOutcome(dataDir);
    assert.equal(outcome.listened, false, `tetcd started on a WAL with a damaged record in its middle; the segment is now ${statSync(segment).size} of ${bytes.length} bytes`);
    assert.ok(outcome.exitCode !== null && outcome.exitCode !== 0, `exit code ${outcome.exitCode}:\n${outcome.output}`);
    assert.match(outcome.output, new RegExp(`offset ${middle}\\b`));
    assert.equal(statSync(segment).size, bytes.length, "the records after the damaged one are not cut off");
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test("a WAL left without its start records still starts from the backend, with all data", { timeout: testTimeoutMs }, async () => {
  const dataDir = temporaryDirectory("tetcd-purge-crash");
  try {
    const puts = await populate(dataDir, 20, "purge", "SIGTERM");
    // A WAL that lost its start records, e.g. its segments deleted by hand after the
    // backend was flushed, with an empty new segment: the backend's copy of the ids remains.
    const directory = join(dataDir, "member", "wal");
    const segments = readdirSync(directory).filter((name) => name.endsWith(".wal")).sort();
    const next = parseInt(segments[segments.length - 1]!.slice(0, 16), 16) + 1;
    for (const name of segments) unlinkSync(join(directory, name));
    writeFileSync(join(directory, `${next.toString(16).padStart(16, "0")}.wal`), new Uint8Array(0));

    const outcome = await startOutcome(dataDir);
    assert.equal(outcome.listened, true, `tetcd refused to start (exit ${outcome.exitCode}):\n${outcome.output}`);
    const server = await startTetcd({ dataDir });
    const client = new EtcdClient(server.endpoint);
    try {
      await assertPresent(client, puts);
    } finally {
      client.close();
      await server.stop();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});
