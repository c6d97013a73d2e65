import { readdirSync, readFileSync } from "node:fs";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { GrpcCallObserver, MethodLabels } from "../api/grpc-server.js";

/** What the member knows, read when the metrics are scraped: nothing here runs on a request's path. */
export interface MemberReadings {
  memberIdHex: string;
  serverVersion: string;
  clusterVersion: string;
  hasLeader(): boolean;
  isLeader(): boolean;
  isLearner(): boolean;
  committedIndex(): number;
  appliedIndex(): number;
  pendingProposals(): number;
  quotaBackendBytes: number;
  databaseBytes(): number;
  databaseBytesInUse(): number;
  keys(): number;
  currentRevision(): number;
  compactRevision(): number;
  /** Counts kept by the member and the store as plain numbers, read as counters. */
  counts(): MemberCounts;
  watch(): { watchers: number; slowWatchers: number; streams: number };
  /** Each peer's counts; `roundTripsMs` are the round trips measured since the last scrape. */
  peers(): Array<{ idHex: string; sentBytes: number; receivedBytes: number; sendFailures: number; roundTripsMs: number[] }>;
}

export interface MemberCounts {
  leaderChanges: number;
  proposalsFailed: number;
  puts: number;
  deletes: number;
  ranges: number;
  txns: number;
}

/** etcd's buckets: exponential from 1 ms, doubling 14 times. */
const diskBuckets = Array.from({ length: 14 }, (_, index) => 0.001 * 2 ** index);
/** The codes go-grpc-prometheus initializes every method's handled counter with. */
const grpcCodeNames = ["OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated"];

/**
 * One member's metrics under etcd 3.4's names, types, labels and buckets, in a
 * registry of its own (several members may share a process). Counters that
 * change on a request's path are plain numbers kept by the modules and read
 * here when scraped; the few events timed as they happen (WAL writes, backend
 * commits, gRPC calls) cost one histogram observation or counter increment.
 */
export class EtcdMetrics {
  readonly registry = new Registry();
  readonly walFsync: Histogram;
  readonly backendCommit: Histogram;
  readonly walWriteBytes: Gauge;
  readonly grpc: GrpcCallObserver;
  private readonly healthSuccess: Counter;
  private readonly healthFailures: Counter;

  constructor(member: MemberReadings, options: { extensive: boolean }) {
    const registers = [this.registry];
    const gauge = (name: string, help: string, read: () => number): void => {
      new Gauge({ name, help, registers, collect() { this.set(read()); } });
    };
    const counter = (name: string, help: string, read: () => number): void => {
      new Counter({ name, help, registers, collect() { this.reset(); this.inc(read()); } });
    };
    const labelled = (name: string, help: string, labels: Record<string, string>): void => {
      new Gauge({ name, help, labelNames: Object.keys(labels), registers }).set(labels, 1);
    };

    gauge("etcd_server_has_leader", "Whether or not a leader exists. 1 is existence, 0 is not.", () => Number(member.hasLeader()));
    gauge("etcd_server_is_leader", "Whether or not this member is a leader. 1 if is, 0 otherwise.", () => Number(member.isLeader()));
    gauge("etcd_server_is_learner", "Whether or not this member is a learner. 1 if is, 0 otherwise.", () => Number(member.isLearner()));
    counter("etcd_server_leader_changes_seen_total", "The number of leader changes seen.", () => member.counts().leaderChanges);
    gauge("etcd_server_proposals_committed_total", "The total number of consensus proposals committed.", () => member.committedIndex());
    gauge("etcd_server_proposals_applied_total", "The total number of consensus proposals applied.", () => member.appliedIndex());
    gauge("etcd_server_proposals_pending", "The current number of pending proposals to commit.", () => member.pendingProposals());
    counter("etcd_server_proposals_failed_total", "The total number of failed proposals seen.", () => member.counts().proposalsFailed);
    gauge("etcd_server_quota_backend_bytes", "Current backend storage quota size in bytes.", () => member.quotaBackendBytes);
    labelled("etcd_server_id", "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.", { server_id: member.memberIdHex });
    labelled("etcd_server_version", "Which version is running. 1 for 'server_version' label with current version.", { server_version: member.serverVersion });
    labelled("etcd_cluster_version", "Which version is running. 1 for 'cluster_version' label with current cluster version", { cluster_version: member.clusterVersion });
    this.healthSuccess = new Counter({ name: "etcd_server_health_success", help: "The total number of successful health checks", registers });
    this.healthFailures = new Counter({ name: "etcd_server_health_failures", help: "The total number of failed health checks", registers });

    for (const prefix of ["etcd_mvcc", "etcd_debugging_mvcc"]) {
      counter(`${prefix}_put_total`, "Total number of puts seen by this member.", () => member.counts().puts);
      counter(`${prefix}_delete_total`, "Total number of deletes seen by this member.", () => member.counts().deletes);
      counter(`${prefix}_range_total`, "Total number of ranges seen by this member.", () => member.counts().ranges);
      counter(`${prefix}_txn_total`, "Total number of txns seen by this member.", () => member.counts().txns);
    }
    gauge("etcd_mvcc_db_total_size_in_bytes", "Total size of the underlying database physically allocated in bytes.", () => member.databaseBytes());
    gauge("etcd_debugging_mvcc_db_total_size_in_bytes", "Total size of the underlying database physically allocated in bytes.", () => member.databaseBytes());
    gauge("etcd_mvcc_db_total_size_in_use_in_bytes", "Total size of the underlying database logically in use in bytes.", () => member.databaseBytesInUse());
    gauge("etcd_debugging_mvcc_keys_total", "Total number of keys.", () => member.keys());
    gauge("etcd_debugging_mvcc_current_revision", "The current revision of store.", () => member.currentRevision());
    gauge("etcd_debugging_mvcc_compact_revision", "The revision of the last compaction in store.", () => Math.max(member.compactRevision(), 0));
    gauge("etcd_debugging_mvcc_watcher_total", "Total number of watchers.", () => member.watch().watchers);
    gauge("etcd_debugging_mvcc_slow_watcher_total", "Total number of unsynced slow watchers.", () => member.watch().slowWatchers);
    gauge("etcd_debugging_mvcc_watch_stream_total", "Total number of watch streams.", () => member.watch().streams);

    this.walFsync = new Histogram({ name: "etcd_disk_wal_fsync_duration_seconds", help: "The latency distributions of fsync called by WAL.", buckets: diskBuckets, registers });
    this.walWriteBytes = new Gauge({ name: "etcd_disk_wal_write_bytes_total", help: "Total number of bytes written in WAL.", registers });
    this.backendCommit = new Histogram({ name: "etcd_disk_backend_commit_duration_seconds", help: "The latency distributions of commit called by backend.", buckets: diskBuckets, registers });
    gauge("os_fd_used", "The number of used file descriptors.", () => openFileDescriptors());
    gauge("os_fd_limit", "The file descriptor limit.", () => fileDescriptorLimit());
    peerMetrics(registers, () => member.peers());
    this.grpc = grpcMetrics(registers, options.extensive);
    collectDefaultMetrics({ register: this.registry });
  }

  /** Counts a /health answer as etcd does. */
  healthChecked(healthy: boolean): void {
    (healthy ? this.healthSuccess : this.healthFailures).inc();
  }

  /** Declares every method's label sets at zero, as go-grpc-prometheus does when a server starts. */
  initializeMethods(methods: readonly MethodLabels[]): void {
    (this.grpc as GrpcMetricsObserver).initialize(methods);
  }

  exposition(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

interface GrpcMetricsObserver extends GrpcCallObserver {
  initialize(methods: readonly MethodLabels[]): void;
}

/** etcd's peer network metrics, by the other member's id; round trips are timed by the transport's pings. */
function peerMetrics(registers: Registry[], read: MemberReadings["peers"]): void {
  // Read once a scrape, by the first of these families to be collected (they are collected in this order).
  let readings: ReturnType<MemberReadings["peers"]> = [];
  const perPeer = (name: string, help: string, label: "To" | "From", value: (peer: (typeof readings)[number]) => number, readsPeers = false): void => {
    new Counter({
      name,
      help,
      labelNames: [label],
      registers,
      collect() {
        if (readsPeers) readings = read();
        this.reset();
        for (const peer of readings) this.inc({ [label]: peer.idHex }, value(peer));
      },
    });
  };
  perPeer("etcd_network_peer_sent_bytes_total", "The total number of bytes sent to peers.", "To", (peer) => peer.sentBytes, true);
  perPeer("etcd_network_peer_received_bytes_total", "The total number of bytes received from peers.", "From", (peer) => peer.receivedBytes);
  perPeer("etcd_network_peer_sent_failures_total", "The total number of send failures from peers.", "To", (peer) => peer.sendFailures);
  new Histogram({
    name: "etcd_network_peer_round_trip_time_seconds",
    help: "Round-Trip-Time histogram between peers",
    labelNames: ["To"],
    buckets: Array.from({ length: 16 }, (_, index) => 0.0001 * 2 ** index),
    registers,
    collect() {
      for (const peer of readings) for (const milliseconds of peer.roundTripsMs) this.observe({ To: peer.idHex }, milliseconds / 1000);
    },
  });
}

/** go-grpc-prometheus's server metrics, and etcd's own counts of client traffic. */
function grpcMetrics(registers: Registry[], extensive: boolean): GrpcMetricsObserver {
  const methodLabelNames = ["grpc_type", "grpc_service", "grpc_method"] as const;
  const started = new Counter({ name: "grpc_server_started_total", help: "Total number of RPCs started on the server.", labelNames: methodLabelNames, registers });
  const handled = new Counter({ name: "grpc_server_handled_total", help: "Total number of RPCs completed on the server, regardless of success or failure.", labelNames: [...methodLabelNames, "grpc_code"], registers });
  const received = new Counter({ name: "grpc_server_msg_received_total", help: "Total number of RPC stream messages received on the server.", labelNames: methodLabelNames, registers });
  const sent = new Counter({ name: "grpc_server_msg_sent_total", help: "Total number of gRPC stream messages sent by the server.", labelNames: methodLabelNames, registers });
  const handling = extensive
    ? new Histogram({ name: "grpc_server_handling_seconds", help: "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.", labelNames: methodLabelNames, registers })
    : undefined;
  const receivedBytes = new Counter({ name: "etcd_network_client_grpc_received_bytes_total", help: "The total number of bytes received from grpc clients.", registers });
  const sentBytes = new Counter({ name: "etcd_network_client_grpc_sent_bytes_total", help: "The total number of bytes sent to grpc clients.", registers });
  const clientRequests = new Counter({ name: "etcd_server_client_requests_total", help: "The total number of client requests per client version.", labelNames: ["type", "client_api_version"], registers });
  return {
    started(method, clientApiVersion) {
      started.inc(method);
      clientRequests.inc({ type: method.grpc_type === "unary" ? "unary" : "stream", client_api_version: clientApiVersion ?? "unknown" });
    },
    received(method, bytes) {
      received.inc(method);
      receivedBytes.inc(bytes);
    },
    sent(method, bytes) {
      sent.inc(method);
      sentBytes.inc(bytes);
    },
    handled(method, code, seconds) {
      handled.inc({ ...method, grpc_code: grpcCodeNames[code] ?? String(code) });
      handling?.observe(method, seconds);
    },
    initialize(methods) {
      for (const method of methods) {
        started.inc(method, 0);
        received.inc(method, 0);
        sent.inc(method, 0);
        for (const code of grpcCodeNames) handled.inc({ ...method, grpc_code: code }, 0);
      }
    },
  };
}

function openFileDescriptors(): number {
  try {
    return readdirSync("/proc/self/fd").length;
  } catch {
    return 0;
  }
}

function fileDescriptorLimit(): number {
  try {
    const line = readFileSync("/proc/self/limits", "utf8").split("\n").find((entry) => entry.startsWith("Max open files"));
    return Number(line?.split(/\s+/)[3] ?? 0);
  } catch {
    return 0;
  }
}
