/**
 * Expected failures of the store, as named values. The API edge maps each to
 * etcd's gRPC code and message.
 */
export class StoreError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = "StoreError";
  }
}

export const ErrCompacted = new StoreError("Compacted", "mvcc: required revision has been compacted");
export const ErrFutureRevision = new StoreError("FutureRevision", "mvcc: required revision is a future revision");
