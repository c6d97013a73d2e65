/** One entry of the replicated log. */
export interface LogEntry {
  term: number;
  index: number;
  data: Uint8Array;
}

/**
 * What the server needs of its log, whatever fills it: a single member that
 * commits on fsync, or the Raft core replicating to peers. Entries are handed to
 * `onCommitted` in index order, each exactly once, only after they are durable
 * on a quorum.
 */
export interface ReplicatedLog {
  readonly term: number;
  readonly leaderId: bigint;
  readonly commitIndex: number;
  /** Index of the last entry in the log (committed or not). */
  readonly lastIndex: number;
  propose(data: Uint8Array): void;
  /** Resolves with an index that, once applied, makes a local read linearizable. */
  readIndex(): Promise<number>;
  close(): Promise<void>;
}
