import type * as grpc from "@grpc/grpc-js";
import type { CompactionRequest, DeleteRangeRequest, PutRequest, RangeRequest, TxnRequest } from "../gen/etcdserverpb/rpc_pb.js";
import type { EtcdServer } from "../server/member.js";
import { authInfoOf } from "./auth-info.js";
import { unary } from "./grpc.js";
import { fillHeader } from "./header.js";
import { checkDeleteRequest, checkPutRequest, checkRangeRequest, checkTxnRequest } from "./validate.js";

/** etcd's KV service: validate, hand to the member, complete the header. */
export function kvService(server: EtcdServer): grpc.UntypedServiceImplementation {
  return {
    range: unary(async (request: RangeRequest, call) => {
      checkRangeRequest(request);
      return fillHeader(server, await server.range(request, await authInfoOf(server, call)));
    }),
    put: unary(async (request: PutRequest, call) => {
      checkPutRequest(request);
      return fillHeader(server, await server.put(request, await authInfoOf(server, call)));
    }),
    deleteRange: unary(async (request: DeleteRangeRequest, call) => {
      checkDeleteRequest(request);
      return fillHeader(server, await server.deleteRange(request, await authInfoOf(server, call)));
    }),
    txn: unary(async (request: TxnRequest, call) => {
      checkTxnRequest(request, server.config.maxTxnOps);
      return fillHeader(server, await server.txn(request, await authInfoOf(server, call)));
    }),
    compact: unary(async (request: CompactionRequest, call) => fillHeader(server, await server.compact(request, await authInfoOf(server, call)))),
  };
}
