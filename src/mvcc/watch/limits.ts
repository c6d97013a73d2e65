/** Limits of the watchable store, kept in one place. */
export const watchLimits = {
  /** Watchers brought up to date from history in one sync round (etcd: 512). */
  watchersPerSyncRound: 512,
  /** History records read from the backend in one sync round. */
  recordsPerSyncRound: 10_000,
  /** Distinct revisions put into one catch-up response (etcd: watchBatchMaxRevs). */
  revisionsPerCatchUpResponse: 1000,
  /** Delay before another sync round when the previous one made no progress. */
  idleSyncRoundDelayMs: 100,
  /** Recent revisions kept in memory, so that short catch-ups need no backend scan. */
  recentRevisionsMax: 1000,
  /** Bytes of key and value held by the recent revisions at most. */
  recentBytesMax: 8 * 1024 * 1024,
  /**
   * Responses a stream buffers while gRPC reports backpressure (etcd: chanBufLen). Past it, or past
   * `streamBufferBytesMax`, its watchers become victims and later catch up in responses of many revisions.
   */
  streamBufferResponsesMax: 128,
  /** Bytes of responses a stream buffers while its client does not read; past it, its watchers become victims. */
  streamBufferBytesMax: 4 * 1024 * 1024,
  /** Written responses a stream's queue keeps before the array is compacted. */
  queueCompactionEntries: 1024,
} as const;
