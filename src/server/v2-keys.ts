import { create } from "@bufbuild/protobuf";
import { RequestSchema, type Request } from "../gen/etcdserverpb/etcdserver_pb.js";
import type { Backend } from "../mvcc/backend.js";
import { applyV2Request } from "../v2store/apply.js";
import { V2Error } from "../v2store/errors.js";
import type { V2Event } from "../v2store/event.js";
import { loadStore, saveStore } from "../v2store/persist.js";
import { V2Store } from "../v2store/store.js";

/** What applying a v2 entry gave: an event, a v2 error, or nothing (SYNC); with the entry's raft index. */
export interface V2Outcome {
  event?: V2Event;
  error?: V2Error;
  raftIndex: number;
}

/** Where the v2 store is kept in the backend, so that it travels with raft snapshots and survives restarts. */
const v2StoreKey = Buffer.from("v2store");

/** The paths no request may change: the root, "/0" (etcd's cluster data) and "/1" (the keys the API serves). */
export const v2ReadonlyPaths: ReadonlySet<string> = new Set(["/", "/0", "/1"]);

/** The directory under which the keys API keeps its keys, as etcd does. */
export const v2KeysPrefix = "/1";

/**
 * The member's v2 keys store: changed only by applied entries, written to
 * the backend in the same transaction as the applied index (so that replay
 * after a crash is idempotent), reloaded from it after a snapshot.
 */
export class V2Keys {
  readonly store = new V2Store(v2ReadonlyPaths);
  private dirty = false;

  constructor(private readonly backend: Backend) {
    this.reload();
  }

  reload(): void {
    // A backend without a saved store (a new member, or a snapshot from before any v2 write) holds an empty one.
    const saved = this.backend.get("meta", v2StoreKey) ?? saveStore(new V2Store(v2ReadonlyPaths));
    loadStore(this.store, saved);
  }

  /** Applies one entry's v2 request (inside the apply transaction). */
  apply(request: Request, raftIndex: number): V2Outcome {
    const indexBefore = this.store.currentIndex;
    try {
      const event = applyV2Request(this.store, request);
      return event === undefined ? { raftIndex } : { event, raftIndex };
    } catch (error) {
      if (error instanceof V2Error) return { error, raftIndex };
      throw error;
    } finally {
      // Every change moves the store index; reads and SYNCs that expire nothing leave nothing to save.
      if (this.store.currentIndex !== indexBefore) this.dirty = true;
    }
  }

  /** Saves the store when entries changed it (inside the apply transaction). */
  persist(): void {
    if (!this.dirty) return;
    this.dirty = false;
    this.backend.put("meta", v2StoreKey, saveStore(this.store));
  }

  /** The SYNC request a leader proposes so that every member expires the same nodes; undefined when nothing has a TTL. */
  syncRequest(nowMs: number): Request | undefined {
    if (!this.store.hasTtlKeys()) return undefined;
    return create(RequestSchema, { Method: "SYNC", Time: BigInt(nowMs) * 1_000_000n });
  }
}
