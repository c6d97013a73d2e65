import type * as grpc from "@grpc/grpc-js";
import type { CompactionRequest, DeleteRangeRequest, PutRequest, RangeRequest, TxnRequest } from "../gen/etcdserverpb/rpc_pb.js";
import type { EtcdServer } from "../server/member.js";
import { unary } from "./grpc.js";
import { fillHeader } from "./header.js";
import { checkDeleteRequest, checkPutRequest, checkRangeRequest, checkTxnRequest } from "./validate.js";

/** etcd's KV service: validate, hand to the member, complete the header. */
export function kvService(server: EtcdServer): grpc.UntypedServiceImplementation {
  return {
    range: unary(async (request: RangeRequest) => {
      checkRangeRequest(request);
      return fillHeader(server, await server.range(request));
    }),
    put: unary(async (request: PutRequest) => {
      checkPutRequest(request);
      return fillHeader(server, await server.put(request));
    }),
    deleteRange: unary(async (request: DeleteRangeRequest) => {
      checkDeleteRequest(request);
      return fillHeader(server, await server.deleteRange(request));
    }),
    txn: unary(async (request: TxnRequest) => {
      checkTxnRequest(request, server.config.maxTxnOps);
      return fillHeader(server, await server.txn(request));
    }),
    compact: unary(async (request: CompactionRequest) => fillHeader(server, await server.compact(request))),
  };
}
