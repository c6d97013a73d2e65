import type { InternalRaftRequest } from "../gen/etcdserverpb/raft_internal_pb.js";
import type { PutRequest, TxnRequest } from "../gen/etcdserverpb/rpc_pb.js";

/** etcd's estimates of what a stored key and a lease cost beyond their bytes. */
const keyValueOverheadBytes = 256;
const leaseOverheadBytes = 64;

/** Bytes a request is expected to add to the backend, as etcd's quota counts them; 0 for requests that add nothing, which pass even past the quota. */
export function quotaCost(request: InternalRaftRequest): number {
  if (request.put !== undefined) return putCost(request.put);
  if (request.txn !== undefined) return txnCost(request.txn);
  if (request.leaseGrant !== undefined) return leaseOverheadBytes;
  return 0;
}

function putCost(request: PutRequest): number {
  return keyValueOverheadBytes + request.key.length + request.value.length;
}

function txnCost(request: TxnRequest): number {
  const branchCost = (ops: TxnRequest["success"]): number =>
    ops.reduce((sum, op) => {
      if (op.request.case === "requestPut") return sum + putCost(op.request.value);
      if (op.request.case === "requestTxn") return sum + txnCost(op.request.value);
      return sum;
    }, 0);
  return Math.max(branchCost(request.success), branchCost(request.failure));
}
