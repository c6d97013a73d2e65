import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { startCluster, type Cluster } from "../support/cluster.js";
import { etcdctlAsync } from "../support/processes.js";

/**
 * The dashboard in a real browser (Debian's chromium, headless) against a
 * 3-member cluster: it lists the members and the leader, shows the new leader
 * after the old one is killed, browses keys, and raises no JavaScript error.
 * A screenshot is kept in test-artifacts/.
 */
const chromium = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium";
const artifacts = join(process.cwd(), "test-artifacts");

async function leaderLine(page: Page): Promise<string> {
  return page.$eval("#leader-line", (element) => element.textContent ?? "");
}

async function waitFor(condition: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`dashboard: ${what} not shown within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe("the dashboard in headless Chromium", { timeout: 120_000 }, () => {
  let cluster: Cluster;
  let browser: Browser;
  const errors: string[] = [];

  before(async () => {
    cluster = await startCluster("tetcd", 3);
    browser = await puppeteer.launch({ executablePath: chromium, headless: true, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
  });
  after(async () => {
    await browser?.close();
    await cluster?.stop();
  });

  test("members, leader, a leader change, keys, and no JavaScript error", async () => {
    const leader = await cluster.waitForLeader();
    const follower = cluster.members.find((member) => member !== leader)!;
    assert.equal((await etcdctlAsync(follower.endpoint, ["put", "app/config", "blue"])).status, 0);
    const page = await browser.newPage();
    page.on("pageerror", (error) => errors.push(`page error: ${String(error)}`));
    page.on("console", (message) => {
      // A member that is down fails its status request; that is a network error, not a script's.
      if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) errors.push(`console: ${message.text()}`);
    });
    await page.setViewport({ width: 1280, height: 900 });
    await page.goto(`${follower.clientUrl}/dashboard`, { waitUntil: "load" });

    await waitFor(async () => (await page.$$("#members tbody tr")).length === 3 && (await leaderLine(page)).includes(leader.name), "three members and the leader");
    const roles = await page.$$eval("#members tbody tr", (rows) => rows.map((row) => row.getAttribute("data-role")));
    assert.deepEqual([...roles].sort(), ["follower", "follower", "leader"]);
    // The leader pings each follower every 2 s; the page shows the mean round trip of the last ones.
    const roundTrips = async (): Promise<string[]> => page.$$eval("#members tbody tr[data-role=follower] td:nth-child(9)", (cells) => cells.map((cell) => cell.textContent ?? ""));
    await waitFor(async () => (await roundTrips()).every((text) => / ms$/.test(text)), "round trips from the leader to both followers", 20_000);

    await page.type("#prefix", "app/");
    await page.click("#browse button");
    await waitFor(async () => (await page.$$eval("#keys tbody tr td:first-child", (cells) => cells.map((cell) => cell.textContent))).includes("app/config"), "the key app/config");
    await page.click("#keys tbody tr");
    await waitFor(async () => (await page.$eval("#value", (element) => element.textContent ?? "")).includes("blue"), "the value of app/config");
    assert.equal((await etcdctlAsync(follower.endpoint, ["put", "app/feature", "on"])).status, 0);
    await waitFor(async () => (await page.$eval("#changes", (element) => element.textContent ?? "")).includes("put app/feature"), "the change to app/feature");

    await leader.kill();
    const next = await cluster.waitForLeader({ among: cluster.members.filter((member) => member !== leader), timeoutMs: 10_000 });
    await waitFor(async () => (await leaderLine(page)).includes(next.name), `the new leader ${next.name}`);
    const unreachable = await page.$$eval("#members tbody td.down", (cells) => cells.length);
    assert.equal(unreachable, 1, "the killed member is shown unreachable");

    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, "dashboard.png"), fullPage: true });
    assert.deepEqual(errors, []);
  });
});
