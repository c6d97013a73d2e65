/**
 * The peer protocol on the wire: HTTP/2 on the peer URLs, h2c on `http:` ones
 * and h2 over TLS on `https:` ones (connection.ts).
 *
 * - `POST /raft/stream/message`: one long-lived request per ordered pair of
 *   members (sender → receiver). The receiver answers `200` with headers at
 *   once and keeps the stream open; the request body is a sequence of frames
 *   (frame.ts), one raftpb.Message each, in send order.
 * - `POST /raft/snapshot`: one request per snapshot message (MsgSnap), on a
 *   connection of its own; the body is one frame. The receiver answers `204`
 *   once it has handed the message over, or an error status.
 *
 * Every request carries the sender, the intended receiver and the cluster as
 * hex ids in headers. A refusal is an HTTP status with the reason in
 * `x-tetcd-error` and in the body: 412 for a cluster or member id mismatch
 * (etcd's status for the same), 410 for a sender removed from the cluster,
 * 400 for a malformed request, 404 for an unknown path.
 */
export const messageStreamPath = "/raft/stream/message";
export const snapshotPath = "/raft/snapshot";

export const headerFrom = "x-tetcd-from";
export const headerTo = "x-tetcd-to";
export const headerClusterId = "x-tetcd-cluster-id";
export const headerError = "x-tetcd-error";

export const statusAccepted = 200;
export const statusSnapshotReceived = 204;
export const statusBadRequest = 400;
export const statusNotFound = 404;
export const statusGone = 410;
export const statusPreconditionFailed = 412;
export const statusInternalError = 500;

const hexIdPattern = /^[0-9a-f]{1,16}$/;

/** A 64-bit id as lowercase hex, as etcd writes member and cluster ids. */
export function formatId(id: bigint): string {
  if (id < 0n || id > 0xffff_ffff_ffff_ffffn) throw new RangeError(`id ${id} is not a uint64`);
  return id.toString(16);
}

/** Parses a header value written by formatId; undefined when it is missing or malformed. */
export function parseId(value: string | string[] | undefined): bigint | undefined {
  if (typeof value !== "string" || !hexIdPattern.test(value)) return undefined;
  return BigInt(`0x${value}`);
}

/** The headers of a request from `from` to `to` in `clusterId`. */
export function requestHeaders(path: string, from: bigint, to: bigint, clusterId: bigint): Record<string, string> {
  return {
    ":method": "POST",
    ":path": path,
    "content-type": "application/octet-stream",
    [headerFrom]: formatId(from),
    [headerTo]: formatId(to),
    [headerClusterId]: formatId(clusterId),
  };
}
