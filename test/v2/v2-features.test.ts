import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { rmSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { startEtcd, startTetcd, temporaryDirectory, type ServerProcess } from "../support/processes.js";
import { V2Client, type V2Answer } from "./v2-client.js";

/**
 * The v2 API beside etcd 3.4 --enable-v2, feature by feature: the landing
 * page's curl examples as written, the history window (1,000 events) and
 * "event index cleared", TTL expiry seen by a watcher, a waitIndex watch
 * answered from history after a restart, and etcdctl with ETCDCTL_API=2.
 */
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs curl as a user would; the answer is the status and the normalized body. */
function curl(client: V2Client, args: string[]): { status: string; body: unknown } {
  const url = `http://${client.endpoint}`;
  const result = spawnSync("curl", ["-s", "-L", "-w", "\n%{http_code}", ...args.map((arg) => arg.replace("http://127.0.0.1:2379", url))], { encoding: "utf8", timeout: 10_000 });
  const lines = result.stdout.split("\n");
  const status = lines.pop()!;
  return { status, body: client.body(lines.join("\n")) };
}

/** etcd's landing page of the v2 days, in order (a watch is started before the change it waits for). */
const landingPage: string[][] = [
  ["http://127.0.0.1:2379/v2/keys/message", "-XPUT", "-d", "value=Hello world"],
  ["http://127.0.0.1:2379/v2/keys/message"],
  ["http://127.0.0.1:2379/v2/keys/message", "-XPUT", "-d", "value=Hello etcd"],
  ["http://127.0.0.1:2379/v2/keys/message", "-XDELETE"],
  ["http://127.0.0.1:2379/v2/keys/foo", "-XPUT", "-d", "value=bar", "-d", "ttl=5"],
  ["http://127.0.0.1:2379/v2/keys/foo", "-XPUT", "-d", "ttl=", "-d", "prevExist=true"],
  ["http://127.0.0.1:2379/v2/keys/foo", "-XPUT", "-d", "ttl=5", "-d", "refresh=true", "-d", "prevExist=true"],
  ["http://127.0.0.1:2379/v2/keys/queue", "-XPOST", "-d", "value=Job1"],
  ["http://127.0.0.1:2379/v2/keys/queue", "-XPOST", "-d", "value=Job2"],
  ["http://127.0.0.1:2379/v2/keys/queue?recursive=true&sorted=true"],
  ["http://127.0.0.1:2379/v2/keys/dir", "-XPUT", "-d", "ttl=30", "-d", "dir=true"],
  ["http://127.0.0.1:2379/v2/keys/dir", "-XPUT", "-d", "ttl=30", "-d", "dir=true", "-d", "prevExist=true"],
  ["http://127.0.0.1:2379/v2/keys/foo?prevExist=false", "-XPUT", "-d", "value=three"],
  ["http://127.0.0.1:2379/v2/keys/foo?prevValue=two", "-XPUT", "-d", "value=three"],
  ["http://127.0.0.1:2379/v2/keys/foo", "-XPUT", "-d", "value=one"],
  ["http://127.0.0.1:2379/v2/keys/foo?prevValue=one", "-XPUT", "-d", "value=two"],
  ["http://127.0.0.1:2379/v2/keys/foo?prevIndex=1", "-XDELETE"],
  ["http://127.0.0.1:2379/v2/keys/foo?prevValue=two", "-XDELETE"],
  ["http://127.0.0.1:2379/v2/keys/dir2?dir=true", "-XPUT"],
  ["http://127.0.0.1:2379/v2/keys/dir2?dir=true", "-XDELETE"],
  ["http://127.0.0.1:2379/v2/keys/dir?recursive=true", "-XDELETE"],
  ["http://127.0.0.1:2379/v2/keys/_message", "-XPUT", "-d", "value=Hello hidden world"],
  ["http://127.0.0.1:2379/v2/keys/message2", "-XPUT", "-d", "value=Hello world"],
  ["http://127.0.0.1:2379/v2/keys/"],
  ["http://127.0.0.1:2379/v2/keys/afile", "-XPUT", "--data-urlencode", "value@/etc/hostname"],
  ["http://127.0.0.1:2379/v2/keys/?recursive=true&sorted=true"],
];

/** etcdctl's v2 commands, run with ETCDCTL_API=2. */
function etcdctl2(endpoint: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync("etcdctl", [`--endpoints=http://${endpoint}`, ...args], { encoding: "utf8", timeout: 10_000, env: { ...process.env, ETCDCTL_API: "2" } });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe("v2 features beside etcd 3.4 --enable-v2", { timeout: 240_000 }, () => {
  let etcd: ServerProcess;
  let tetcd: ServerProcess;
  let clients: [V2Client, V2Client];

  before(async () => {
    [etcd, tetcd] = await Promise.all([startEtcd({ extraArgs: ["--enable-v2"] }), startTetcd({ extraArgs: ["--enable-v2"] })]);
    clients = [new V2Client(etcd.endpoint), new V2Client(tetcd.endpoint)];
    await Promise.all(clients.map((client) => client.start()));
  });

  after(async () => {
    await Promise.all([etcd?.stop(), tetcd?.stop()]);
  });

  test("the landing page's curl examples, and a watch they wake", async () => {
    const watches = clients.map((client) => client.call({ method: "GET", path: "/v2/keys/message", query: { wait: "true" }, waitMs: 5000 }));
    await sleep(200);
    for (const args of landingPage) {
      const [expected, actual] = clients.map((client) => curl(client, args));
      assert.deepEqual(actual, expected, `curl ${args.join(" ")}`);
    }
    const [expectedWatch, actualWatch] = await Promise.all(watches);
    assert.deepEqual(actualWatch, expectedWatch);
    assert.equal((actualWatch!.body as { action: string }).action, "set");
  });

  test("a node's TTL runs out: a watcher sees 'expire', then the key is gone", async () => {
    const put = await Promise.all(clients.map((client) => client.call({ method: "PUT", path: "/v2/keys/ttl/short", form: { value: "v", ttl: "2" } })));
    assert.deepEqual(put[1], put[0]);
    const watched = await Promise.all(clients.map((client) => client.call({ method: "GET", path: "/v2/keys/ttl/short", query: { wait: "true" }, waitMs: 8000 })));
    assert.deepEqual(watched[1], watched[0]);
    assert.equal((watched[1]!.body as { action: string }).action, "expire");
    const gone = await Promise.all(clients.map((client) => client.call({ method: "GET", path: "/v2/keys/ttl/short" })));
    assert.deepEqual(gone[1], gone[0]);
    assert.equal(gone[1]!.status, 404);
  });

  test("the history keeps 1,000 events: an older waitIndex is 'event index cleared'", async () => {
    const [, firstActual] = await Promise.all(clients.map((client) => client.call({ method: "PUT", path: "/v2/keys/history/k", form: { value: "first" } })));
    const first = Number(firstActual!.headers["x-etcd-index"]);
    for (let round = 0; round < 1005; round++) {
      const answers = await Promise.all(clients.map((client) => client.call({ method: "PUT", path: "/v2/keys/history/k", form: { value: `v${round}` } })));
      assert.equal(answers[1]!.status, answers[0]!.status);
    }
    const cleared = await Promise.all(clients.map((client) => client.call({ method: "GET", path: "/v2/keys/history/k", query: { wait: "true", waitIndex: { relative: first } }, waitMs: 2000 })));
    assert.deepEqual(cleared[1], cleared[0]);
    assert.equal((cleared[1]!.body as { errorCode: number }).errorCode, 401);
    const kept = await Promise.all(clients.map((client) => client.call({ method: "GET", path: "/v2/keys/history/k", query: { wait: "true", waitIndex: { relative: first + 10 } }, waitMs: 2000 })));
    assert.deepEqual(kept[1], kept[0]);
    assert.equal((kept[1]!.body as { node: { value: string } }).node.value, "v9");
  });

  test("/v2/members, /v2/machines and /v2/stats answer as etcd's do (ids, URLs and counters aside)", async () => {
    const exchanges: Array<{ method: string; path: string; type?: string; body?: string }> = [
      { method: "GET", path: "/v2/members" },
      { method: "GET", path: "/v2/members/leader" },
      { method: "GET", path: "/v2/members/xyz" },
      { method: "DELETE", path: "/v2/members/1234" },
      { method: "DELETE", path: "/v2/members/zz" },
      { method: "DELETE", path: "/v2/members" },
      { method: "PUT", path: "/v2/members/1234", type: "application/json", body: '{"peerURLs":["http://127.0.0.1:9"]}' },
      { method: "POST", path: "/v2/members", type: "application/x-www-form-urlencoded", body: '{"peerURLs":["http://127.0.0.1:9"]}' },
      { method: "POST", path: "/v2/members", type: "application/json", body: '{"peerURLs":["bad"]}' },
      { method: "PATCH", path: "/v2/members" },
      { method: "GET", path: "/v2/machines" },
      { method: "POST", path: "/v2/machines" },
      { method: "GET", path: "/v2/stats/self" },
      { method: "GET", path: "/v2/stats/store" },
      { method: "GET", path: "/v2/stats/leader" },
      { method: "PUT", path: "/v2/stats/self" },
    ];
    for (const exchange of exchanges) {
      const [expected, actual] = await Promise.all(
        [etcd, tetcd].map(async (server) => {
          const init: RequestInit = { method: exchange.method };
          if (exchange.body !== undefined) init.body = exchange.body;
          if (exchange.type !== undefined) init.headers = { "Content-Type": exchange.type };
          const response = await fetch(`http://${server.endpoint}${exchange.path}`, init);
          const text = (await response.text()).replaceAll(server.endpoint, "<client>");
          let body: unknown = text;
          try {
            body = JSON.parse(text, (key, value: unknown) => (["id", "leader", "startTime", "uptime", "name"].includes(key) ? "<x>" : typeof value === "number" ? "<n>" : value));
          } catch {
            // plain text
          }
          const shape = JSON.stringify(body).replace(/http:\/\/127\.0\.0\.1:\d+/g, "<url>");
          return { status: response.status, type: response.headers.get("content-type"), allow: response.headers.get("allow"), newline: text.endsWith("\n"), shape };
        }),
      );
      assert.deepEqual(actual, expected, `${exchange.method} ${exchange.path}`);
    }
  });

  test("paths Go's server would not route as written: redirected to the clean path, or refused", async () => {
    const requests: Array<[string, string]> = [
      ["GET", "/v2/keys/a/../b?recursive=true&x=<1>"],
      ["PUT", "/v2/keys//a"],
      ["GET", "/v2/keys/./x/"],
      ["GET", "/v2//members"],
      ["GET", "/v2/keys/%E0%A4%A"],
    ];
    for (const [method, path] of requests) {
      const [expected, actual] = await Promise.all(
        [etcd, tetcd].map(
          (server) =>
            new Promise<unknown>((resolve, reject) => {
              // node:http sends the path as written (fetch would clean it first).
              const [host, port] = server.endpoint.split(":");
              const request = httpRequest({ host, port: Number(port), path, method }, (response) => {
                let body = "";
                response.on("data", (chunk: Buffer) => (body += chunk.toString()));
                response.on("end", () => resolve({ status: response.statusCode, location: response.headers["location"], type: response.headers["content-type"], body: body.replace(/"index":\d+/, '"index":<n>') }));
              });
              request.on("error", reject);
              request.end();
            }),
        ),
      );
      assert.deepEqual(actual, expected, `${method} ${path}`);
    }
  });

  test("etcdctl with ETCDCTL_API=2 prints what it prints against etcd", () => {
    const scripts: string[][] = [
      ["set", "/ctl/foo", "bar"],
      ["get", "/ctl/foo"],
      ["mkdir", "/ctl/dir"],
      ["set", "/ctl/dir/inner", "x"],
      ["ls", "-r", "/ctl"],
      ["ls", "--sort", "-r", "-p", "/ctl"],
      ["rm", "/ctl/foo"],
      ["rm", "/ctl/foo"],
      ["get", "/ctl/dir"],
      ["rmdir", "/ctl/dir"],
      ["rm", "-r", "/ctl/dir"],
      ["mk", "/ctl/t", "v", "--ttl", "100"],
      ["mk", "/ctl/t", "w"],
      ["update", "/ctl/t", "w"],
      ["set", "/ctl/t", "z", "--swap-with-value", "nope"],
      ["-o", "extended", "get", "/ctl/t"],
    ];
    for (const args of scripts) {
      const [expected, actual] = [etcd, tetcd].map((server) => etcdctl2(server.endpoint, args));
      const mask = (text: string, base: number) => text.replace(/\[(\d+)\]/g, (_, index: string) => `[${Number(index) - base}]`).replace(/(Index|TTL): \d+/g, "$1: <n>");
      assert.equal(actual!.status, expected!.status, `etcdctl ${args.join(" ")}`);
      // etcd lists a directory in Go's map order unless asked to sort: unsorted listings are compared as sets of lines.
      const lines = (text: string) => (args[0] === "ls" && !args.includes("--sort") ? text.split("\n").sort().join("\n") : text);
      assert.equal(lines(mask(actual!.stdout, clients[1].base)), lines(mask(expected!.stdout, clients[0].base)), `etcdctl ${args.join(" ")}`);
      assert.equal(mask(actual!.stderr, clients[1].base), mask(expected!.stderr, clients[0].base), `etcdctl ${args.join(" ")}`);
    }
    const members = [etcd, tetcd].map((server) => etcdctl2(server.endpoint, ["member", "list"]).stdout.replace(/^[0-9a-f]+:/, "<id>:").replaceAll(server.endpoint, "<client>").replace(/peerURLs=\S+/, "peerURLs=<peer>"));
    assert.equal(members[1], members[0]);
    assert.match(members[1]!, /^<id>: name=default peerURLs=<peer> clientURLs=http:\/\/<client> isLeader=true\n$/);
    // watch --after-index answers from the history, exec-watch runs a command on a change.
    const watched = [etcd, tetcd].map((server) => etcdctl2(server.endpoint, ["watch", "/ctl/t", "--after-index", "1"]));
    assert.equal(watched[1]!.stdout, watched[0]!.stdout);
  });
  test("etcdctl exec-watch runs its command on each change, as against etcd", async () => {
    // etcdctl's v2 exec-watch takes the key last when no flag precedes it.
    const outputs = await Promise.all(
      [etcd, tetcd].map(
        (server, index) =>
          new Promise<string>((resolve) => {
            const child = execFile(
              "etcdctl",
              [`--endpoints=http://${server.endpoint}`, "exec-watch", "sh", "-c", 'echo "$ETCD_WATCH_ACTION $ETCD_WATCH_KEY $ETCD_WATCH_VALUE"', "/ctl/ew"],
              { encoding: "utf8", timeout: 6000, killSignal: "SIGKILL", env: { ...process.env, ETCDCTL_API: "2" } },
              (_, stdout) => resolve(stdout),
            );
            void (async () => {
              await sleep(1500);
              await clients[index]!.call({ method: "PUT", path: "/v2/keys/ctl/ew", form: { value: "first" } });
              await clients[index]!.call({ method: "PUT", path: "/v2/keys/ctl/ew", form: { value: "second" } });
              await sleep(1000);
              child.kill("SIGKILL");
            })();
          }),
      ),
    );
    assert.equal(outputs[1], outputs[0]);
    assert.equal(outputs[1], "set /ctl/ew first\nset /ctl/ew second\n");
  });
});

describe("a waitIndex watch after a restart", { timeout: 120_000 }, () => {
  test("tetcd answers from the saved history, as etcd replays it", async () => {
    const answers: V2Answer[][] = [];
    for (const start of [startEtcd, startTetcd]) {
      // The data dir is the test's, so that it outlives the first process.
      const dataDir = temporaryDirectory("v2-restart");
      let server = await start({ extraArgs: ["--enable-v2"], dataDir });
      const port = Number(server.endpoint.split(":")[1]);
      try {
        const client = new V2Client(server.endpoint);
        await client.start();
        await client.call({ method: "PUT", path: "/v2/keys/restart/k", form: { value: "before" } });
        await client.call({ method: "PUT", path: "/v2/keys/restart/other", form: { value: "x" } });
        await server.stop();
        server = await start({ extraArgs: ["--enable-v2"], dataDir, port });
        await sleep(1500);
        answers.push([
          await client.call({ method: "GET", path: "/v2/keys/restart/k", query: { wait: "true", waitIndex: { relative: 1 } }, waitMs: 3000 }),
          await client.call({ method: "GET", path: "/v2/keys/restart", query: { recursive: "true", sorted: "true" } }),
        ]);
      } finally {
        await server.stop();
        rmSync(dataDir, { recursive: true, force: true });
      }
    }
    // etcd's member publishes its attributes into its v2 store again on restart (one more store index): X-Etcd-Index is compared apart.
    const withoutIndex = (list: typeof answers) => list.map((pair) => pair.map((answer) => ({ ...answer, headers: { ...answer.headers, "x-etcd-index": undefined } })));
    assert.deepEqual(withoutIndex(answers)[1], withoutIndex(answers)[0]);
    assert.equal(Number(answers[0]![0]!.headers["x-etcd-index"]), 3);
    assert.equal(Number(answers[1]![0]!.headers["x-etcd-index"]), 2);
    assert.equal((answers[1]![0]!.body as { node: { value: string } }).node.value, "before");
  });
});

describe("without --enable-v2", { timeout: 60_000 }, () => {
  test("every /v2 path answers Go's 404, as etcd 3.4 does", async () => {
    const servers = await Promise.all([startEtcd(), startTetcd()]);
    try {
      const paths: Array<[string, string]> = [
        ["GET", "/v2/keys/"],
        ["PUT", "/v2/keys/foo?value=bar"],
        ["GET", "/v2/keys/foo?wait=true"],
        ["GET", "/v2/members"],
        ["GET", "/v2/machines"],
        ["GET", "/v2/stats/self"],
        ["GET", "/v2"],
      ];
      for (const [method, path] of paths) {
        const [expected, actual] = await Promise.all(
          servers.map(async (server) => {
            const response = await fetch(`http://${server.endpoint}${path}`, { method });
            return { status: response.status, type: response.headers.get("content-type"), sniff: response.headers.get("x-content-type-options"), cors: response.headers.get("access-control-allow-origin"), body: await response.text() };
          }),
        );
        assert.deepEqual(actual, expected, `${method} ${path}`);
        assert.equal(actual!.body, "404 page not found\n");
      }
    } finally {
      await Promise.all(servers.map((server) => server.stop()));
    }
  });
});
