// The tetcd dashboard: reads only the member's public HTTP endpoints (the /v3
// JSON gateway of each member, and /metrics of the member that served the page).

const refreshMs = 1000;
const keyLimit = 200;
const changesKept = 50;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function toBase64(text) {
  let binary = "";
  for (const byte of encoder.encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function fromBase64(text) {
  if (!text) return "";
  const binary = atob(text);
  return decoder.decode(Uint8Array.from(binary, (character) => character.charCodeAt(0)));
}

/** The end of the range of keys that start with `prefix` ("\0" for every key), base64. */
function prefixEnd(prefix) {
  const bytes = encoder.encode(prefix);
  for (let index = bytes.length - 1; index >= 0; index--) {
    if (bytes[index] < 0xff) {
      const end = bytes.slice(0, index + 1);
      end[index]++;
      return btoa(String.fromCharCode(...end));
    }
  }
  return btoa("\0");
}

async function post(base, path, body) {
  const response = await fetch(`${base}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

function formatBytes(bytes) {
  const units = ["B", "KiB", "MiB", "GiB"];
  let value = Number(bytes);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

function hex(id) {
  return BigInt(id).toString(16);
}

function cell(row, text, className) {
  const element = row.insertCell();
  element.textContent = text;
  if (className) element.className = className;
  return element;
}

/** Sums of each metric family's samples, from the Prometheus text format. */
function parseMetrics(text) {
  const sums = new Map();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})? (\S+)/.exec(line);
    if (match) sums.set(match[1], (sums.get(match[1]) ?? 0) + Number(match[2]));
  }
  return sums;
}

let previousMetrics;
/** The leader's round-trip sums and counts by follower at the last look: { leader, sums: Map, counts: Map }. */
let previousRoundTrips;

/** The sum and count of the leader's round trips to each peer (etcd_network_peer_round_trip_time_seconds, by To). */
function parseRoundTrips(text) {
  const sums = new Map();
  const counts = new Map();
  for (const line of text.split("\n")) {
    const match = /^etcd_network_peer_round_trip_time_seconds_(sum|count)\{[^}]*To="([0-9a-f]+)"[^}]*\} (\S+)/.exec(line);
    if (match) (match[1] === "sum" ? sums : counts).set(match[2], Number(match[3]));
  }
  return { sums, counts };
}

/** The mean round trip from the leader to each follower since the last look, in ms, by hex id. */
async function leaderRoundTrips(leaderMember) {
  const url = leaderMember && (leaderMember.clientURLs ?? [])[0];
  if (!url) return new Map();
  const { sums, counts } = parseRoundTrips(await (await fetch(`${url}/metrics`)).text());
  const means = new Map();
  if (previousRoundTrips !== undefined && previousRoundTrips.leader === leaderMember.ID) {
    for (const [id, count] of counts) {
      const taken = count - (previousRoundTrips.counts.get(id) ?? 0);
      if (taken > 0) means.set(id, ((sums.get(id) - (previousRoundTrips.sums.get(id) ?? 0)) / taken) * 1000);
    }
  }
  previousRoundTrips = { leader: leaderMember.ID, sums, counts, means: means.size > 0 ? means : previousRoundTrips?.means ?? new Map() };
  return previousRoundTrips.means;
}

async function refreshMembers() {
  const list = await post("", "/v3/cluster/member/list", {});
  document.getElementById("cluster-id").textContent = `cluster ${hex(list.header.cluster_id)}`;
  const members = list.members ?? [];
  const statuses = await Promise.all(
    members.map((member) => {
      const url = (member.clientURLs ?? [])[0];
      return url ? post(url, "/v3/maintenance/status", {}).catch(() => undefined) : Promise.resolve(undefined);
    }),
  );
  // The leader as the members that answer see it.
  const leaders = statuses.filter((status) => status && status.leader && status.leader !== "0").map((status) => status.leader);
  const votes = new Map();
  for (const id of leaders) votes.set(id, (votes.get(id) ?? 0) + 1);
  const leader = [...votes].sort((a, b) => b[1] - a[1])[0]?.[0];
  const leaderMember = members.find((member) => member.ID === leader);
  const roundTrips = await leaderRoundTrips(leaderMember).catch(() => new Map());
  const body = document.querySelector("#members tbody");
  body.replaceChildren();
  members.forEach((member, index) => {
    const status = statuses[index];
    const row = body.insertRow();
    const isLeader = leader !== undefined && member.ID === leader;
    if (isLeader) row.className = "leader";
    row.dataset.role = member.isLearner ? "learner" : isLeader ? "leader" : "follower";
    cell(row, member.name || "(unstarted)");
    cell(row, hex(member.ID));
    cell(row, row.dataset.role);
    cell(row, (member.clientURLs ?? []).join(", "));
    cell(row, status ? status.raftTerm : "–");
    cell(row, status ? status.raftIndex : "–");
    cell(row, status ? status.raftAppliedIndex : "–");
    cell(row, status ? `${formatBytes(status.dbSize)} (${formatBytes(status.dbSizeInUse ?? 0)} in use)` : "–");
    const roundTrip = roundTrips.get(hex(member.ID));
    cell(row, isLeader ? "" : roundTrip === undefined ? "–" : `${roundTrip.toFixed(2)} ms`);
    cell(row, status ? "up" : "unreachable", status ? "" : "down");
  });
  document.getElementById("leader-line").textContent = leaderMember ? `Leader: ${leaderMember.name} (${hex(leaderMember.ID)})` : "No leader";
}

async function refreshMetrics() {
  const response = await fetch("/metrics");
  const now = performance.now();
  const sums = parseMetrics(await response.text());
  const quota = sums.get("etcd_server_quota_backend_bytes") ?? 0;
  const size = sums.get("etcd_mvcc_db_total_size_in_bytes") ?? 0;
  document.getElementById("db-size").textContent = `${formatBytes(size)} of ${formatBytes(quota)}`;
  const meter = document.getElementById("db-quota");
  meter.max = quota || 1;
  meter.value = size;
  document.getElementById("proposals").textContent =
    `${sums.get("etcd_server_proposals_committed_total") ?? 0} committed, ${sums.get("etcd_server_proposals_pending") ?? 0} pending, ${sums.get("etcd_server_proposals_failed_total") ?? 0} failed`;
  if (previousMetrics !== undefined) {
    const seconds = (now - previousMetrics.at) / 1000;
    const delta = (name) => (sums.get(name) ?? 0) - (previousMetrics.sums.get(name) ?? 0);
    document.getElementById("request-rate").textContent = `${(delta("grpc_server_started_total") / seconds).toFixed(1)} gRPC requests/s`;
    const mean = (family) => {
      const count = delta(`${family}_count`);
      return count > 0 ? `${((delta(`${family}_sum`) / count) * 1000).toFixed(2)} ms mean (${count} in ${seconds.toFixed(1)} s)` : "idle";
    };
    document.getElementById("fsync").textContent = mean("etcd_disk_wal_fsync_duration_seconds");
    document.getElementById("commit").textContent = mean("etcd_disk_backend_commit_duration_seconds");
  }
  previousMetrics = { at: now, sums };
}

async function refreshAlarms() {
  const reply = await post("", "/v3/maintenance/alarm", { action: "GET" });
  const alarms = (reply.alarms ?? []).filter((alarm) => alarm.alarm && alarm.alarm !== "NONE");
  document.getElementById("alarms").textContent = alarms.length === 0 ? "none" : alarms.map((alarm) => `${alarm.alarm} on ${hex(alarm.memberID)}`).join(", ");
}

// -- key browser --------------------------------------------------------------

let browsedPrefix = "";
let lastRevision = 0;

async function listKeys() {
  const prefix = document.getElementById("prefix").value;
  browsedPrefix = prefix;
  const reply = await post("", "/v3/kv/range", { key: toBase64(prefix || "\0"), range_end: prefixEnd(prefix), limit: keyLimit, keys_only: true });
  lastRevision = Number(reply.header.revision);
  const body = document.querySelector("#keys tbody");
  body.replaceChildren();
  for (const kv of reply.kvs ?? []) {
    const row = body.insertRow();
    const key = fromBase64(kv.key);
    cell(row, key);
    cell(row, kv.mod_revision);
    cell(row, kv.version);
    row.addEventListener("click", () => void showValue(key));
  }
  document.getElementById("changes").replaceChildren();
}

async function showValue(key) {
  const reply = await post("", "/v3/kv/range", { key: toBase64(key) });
  const kv = (reply.kvs ?? [])[0];
  document.getElementById("value").textContent = kv
    ? `${key}\n\n${fromBase64(kv.value)}\n\ncreate revision ${kv.create_revision}, mod revision ${kv.mod_revision}, version ${kv.version}${kv.lease ? `, lease ${hex(kv.lease)}` : ""}`
    : `${key}: deleted`;
}

/** Shows the keys under the prefix written since the last look, newest first. */
async function followChanges() {
  if (!document.getElementById("follow").checked || lastRevision === 0) return;
  const reply = await post("", "/v3/kv/range", { key: toBase64(browsedPrefix || "\0"), range_end: prefixEnd(browsedPrefix), min_mod_revision: String(lastRevision + 1), keys_only: true });
  const list = document.getElementById("changes");
  const changed = (reply.kvs ?? []).sort((a, b) => Number(a.mod_revision) - Number(b.mod_revision));
  for (const kv of changed) {
    const item = document.createElement("li");
    item.textContent = `revision ${kv.mod_revision}: put ${fromBase64(kv.key)} (version ${kv.version})`;
    list.prepend(item);
  }
  while (list.children.length > changesKept) list.lastElementChild.remove();
  lastRevision = Math.max(lastRevision, Number(reply.header.revision));
}

async function refresh() {
  const results = await Promise.allSettled([refreshMembers(), refreshMetrics(), refreshAlarms(), followChanges()]);
  const failed = results.filter((result) => result.status === "rejected");
  document.getElementById("updated").textContent = failed.length === 0 ? `updated ${new Date().toLocaleTimeString()}` : `update incomplete: ${failed[0].reason.message}`;
  setTimeout(() => void refresh(), refreshMs);
}

document.getElementById("browse").addEventListener("submit", (event) => {
  event.preventDefault();
  void listKeys();
});
void listKeys();
void refresh();
