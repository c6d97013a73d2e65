import type { Backend } from "../mvcc/backend.js";
import type { Wal } from "../wal/wal.js";
import type { RaftNode } from "./raft-node.js";
import type { ServerRaftStorage } from "./snapshot.js";
import { hardStateRecord, metadataRecord } from "./wal-records.js";

/** Entries kept in memory behind the applied index after compacting, for slow followers (etcd's snapshotCatchUpEntries). */
export const catchUpEntries = 5000;

/**
 * Keeps the log bounded once --snapshot-count entries have been applied: the
 * backend is the snapshot, so once it is on disk the WAL segments holding
 * only entries it covers are deleted, and the in-memory log keeps just
 * `catchUpEntries` behind it (a follower needing older ones gets a snapshot;
 * while one is being made, the in-memory log is left whole).
 *
 * Each run starts a new WAL segment. A segment may be deleted once every
 * entry written before the next rotation is applied and durable in the
 * backend; the newest `maxWals` segments are kept all the same (--max-wals,
 * as etcd retains them; 0 keeps every one).
 */
export class LogCompactor {
  private readonly rotations: Array<{ sequence: number; lastWritten: number }> = [];
  private running = false;

  constructor(
    private readonly wal: Wal,
    private readonly backend: Backend,
    private readonly raft: RaftNode,
    private readonly raftStorage: ServerRaftStorage,
    private readonly ids: { memberId: bigint; clusterId: bigint },
    private readonly maxWals: number,
  ) {}

  /** Compacts up to `applied` (the applied index now); runs one at a time, a call while one runs is dropped. */
  async compact(applied: number): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      // Built when the rotation happens, after every pending write: the hard
      // state repeated in the new segment is the latest one written.
      const sequence = await this.wal.rotate(() => [metadataRecord(this.ids.memberId, this.ids.clusterId), hardStateRecord(this.raft.writtenHardState)]);
      // Read after the rotation: an upper bound on the entries in older segments.
      this.rotations.push({ sequence, lastWritten: this.raft.writtenIndex });
      await this.backend.flushed();
      // Segments before a rotation hold only entries written before it.
      let purgeBefore: number | undefined;
      while (this.rotations.length > 0 && this.rotations[0]!.lastWritten <= applied) purgeBefore = this.rotations.shift()!.sequence;
      if (purgeBefore !== undefined && this.maxWals > 0) this.wal.purgeBefore(purgeBefore, this.maxWals);
      const compactTo = applied - catchUpEntries;
      if (compactTo >= this.raftStorage.firstIndex() && !this.raftStorage.preparing) this.raftStorage.compact(compactTo);
    } finally {
      this.running = false;
    }
  }
}
