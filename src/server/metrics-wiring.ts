import { EtcdMetrics } from "../metrics/etcd-metrics.js";
import type { WatchStats } from "../mvcc/watchable-store.js";
import { clusterVersion, etcdVersion, type EtcdServer } from "./member.js";

/**
 * Builds a member's metrics: the readings the registry takes when scraped,
 * and the hooks that time WAL writes and backend commits as they happen.
 */
export function instrumentMember(server: EtcdServer, watchStats: () => WatchStats): EtcdMetrics {
  const store = server.store;
  const metrics = new EtcdMetrics(
    {
      memberIdHex: server.memberId.toString(16),
      serverVersion: etcdVersion,
      clusterVersion: clusterVersion.slice(0, 3),
      hasLeader: () => server.leaderId !== 0n,
      isLeader: () => server.leaderId === server.memberId,
      isLearner: () => server.isLearner,
      committedIndex: () => server.commitIndex,
      appliedIndex: () => server.appliedIndex,
      pendingProposals: () => server.pendingProposals,
      quotaBackendBytes: server.config.quotaBackendBytes,
      databaseBytes: () => server.backend.size().sizeBytes,
      databaseBytesInUse: () => server.backend.size().sizeInUseBytes,
      keys: () => store.liveKeys,
      currentRevision: () => store.currentRevision,
      compactRevision: () => store.compactRevision,
      counts: () => ({ ...server.counters, puts: store.operations.put, deletes: store.operations.delete, ranges: store.operations.range, txns: store.operations.txn }),
      peers: () => {
        const received = server.transport.receivedBytes();
        return server.transport.peerIds().map((id) => {
          const status = server.transport.peerStatus(id);
          return { idHex: id.toString(16), sentBytes: status?.sentBytes ?? 0, receivedBytes: received.get(id) ?? 0, sendFailures: status?.droppedMessages ?? 0, roundTripsMs: server.transport.takePeerRoundTripsMs(id) };
        });
      },
      watch: () => {
        const stats = watchStats();
        return { watchers: stats.synced + stats.unsynced + stats.victims, slowWatchers: stats.unsynced + stats.victims, streams: stats.streams };
      },
    },
    { extensive: server.config.metrics === "extensive" },
  );
  let walBytes = 0;
  server.wal.onSyncedWrite = (seconds, bytes) => {
    metrics.walFsync.observe(seconds);
    walBytes += bytes;
    metrics.walWriteBytes.set(walBytes);
  };
  server.backend.onCommit = (seconds) => metrics.backendCommit.observe(seconds);
  return metrics;
}
