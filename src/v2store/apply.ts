import type { Request } from "../gen/etcdserverpb/etcdserver_pb.js";
import type { V2Event } from "./event.js";
import type { TtlOptions, V2Store } from "./store.js";

/** Nanoseconds in a millisecond, for the request's absolute times. */
const nsPerMs = 1_000_000n;

function ttlOptions(request: Request): TtlOptions {
  const options: TtlOptions = { refresh: request.Refresh === true };
  if (request.Expiration !== 0n) options.expireAtMs = Number(request.Expiration / nsPerMs);
  return options;
}

/**
 * Applies one v2 request from the log, as etcd's v2 applier does: PUT is a
 * set, a create (prevExist=false), an update (prevExist=true) or a
 * compare-and-swap; POST creates an in-order key; DELETE deletes or
 * compares-and-deletes; QGET reads through the log; SYNC expires nodes whose
 * time has come. Throws the store's V2Error; SYNC answers nothing.
 */
export function applyV2Request(store: V2Store, request: Request): V2Event | undefined {
  const ttl = ttlOptions(request);
  const prevIndex = Number(request.PrevIndex);
  switch (request.Method) {
    case "PUT":
      if (request.PrevExist !== undefined) {
        if (!request.PrevExist) return store.createNode(request.Path, request.Dir, request.Val, false, ttl);
        if (prevIndex === 0 && request.PrevValue === "") return store.update(request.Path, request.Val, ttl);
        return store.compareAndSwap(request.Path, request.PrevValue, prevIndex, request.Val, ttl);
      }
      if (prevIndex > 0 || request.PrevValue !== "") return store.compareAndSwap(request.Path, request.PrevValue, prevIndex, request.Val, ttl);
      return store.set(request.Path, request.Dir, request.Val, ttl);
    case "POST":
      return store.createNode(request.Path, request.Dir, request.Val, true, ttl);
    case "DELETE":
      if (prevIndex > 0 || request.PrevValue !== "") return store.compareAndDelete(request.Path, request.PrevValue, prevIndex);
      return store.delete(request.Path, request.Dir, request.Recursive);
    case "QGET":
      return store.get(request.Path, request.Recursive, request.Sorted);
    case "SYNC":
      store.deleteExpired(Number(request.Time / nsPerMs));
      return undefined;
    default:
      throw new Error(`unknown v2 method ${request.Method}`);
  }
}
