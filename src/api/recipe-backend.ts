import { AsyncLocalStorage } from "node:async_hooks";
import { create } from "@bufbuild/protobuf";
import type { AuthInfo } from "../auth/auth-store.js";
import type * as grpc from "@grpc/grpc-js";
import { LeaseGrantRequestSchema, ResponseHeaderSchema, type DeleteRangeRequest, type RangeRequest, type TxnRequest } from "../gen/etcdserverpb/rpc_pb.js";
import { KeyWatch } from "../concurrency/key-watch.js";
import type { RecipeBackend } from "../concurrency/recipes.js";
import type { WatchableStore } from "../mvcc/watchable-store.js";
import { EtcdError, GrpcCode } from "../server/errors.js";
import type { EtcdServer } from "../server/member.js";
import { authInfoOf } from "./auth-info.js";
import { toServiceError } from "./grpc.js";
import { fillHeader } from "./header.js";
import { checkDeleteRequest, checkRangeRequest, checkTxnRequest } from "./validate.js";

/** The user a recipe runs as, for the member calls it makes. */
const callerAuth = new AsyncLocalStorage<AuthInfo>();

/** clientv3's retries of a read that found the cluster unavailable: how many, and the wait between them. */
const readRetriesMax = 100;
const readRetryWaitMs = 25;

/**
 * The member as a client of itself, for the Lock and Election services:
 * requests are checked as the KV service checks them, and answers carry
 * complete headers. Watches are opened on the member's watchable store.
 */
export function recipeBackend(server: EtcdServer, watchable: WatchableStore): RecipeBackend {
  const caller = (): AuthInfo | undefined => callerAuth.getStore();
  return {
    async txn(request: TxnRequest) {
      checkTxnRequest(request, server.config.maxTxnOps);
      return fillHeader(server, await server.txn(request, caller()));
    },
    async range(request: RangeRequest) {
      checkRangeRequest(request);
      // As etcd's client does for reads: a member without a leader for a moment is asked again.
      for (let attempt = 1; ; attempt++) {
        try {
          return fillHeader(server, await server.range(request, caller()));
        } catch (error) {
          if (!(error instanceof EtcdError) || error.grpcCode !== GrpcCode.Unavailable || attempt >= readRetriesMax || server.stopped) throw error;
          await new Promise((resolve) => setTimeout(resolve, readRetryWaitMs));
        }
      }
    },
    async deleteRange(request: DeleteRangeRequest) {
      checkDeleteRequest(request);
      return fillHeader(server, await server.deleteRange(request, caller()));
    },
    async grantLease(ttlSeconds: number) {
      const response = await server.leaseGrant(create(LeaseGrantRequestSchema, { TTL: BigInt(ttlSeconds) }));
      return response.ID;
    },
    watch: (range, signal) => new KeyWatch(watchable, range, signal),
    header: (revision: number) => create(ResponseHeaderSchema, { clusterId: server.clusterId, memberId: server.memberId, raftTerm: BigInt(server.term), revision: BigInt(revision) }),
  };
}

/**
 * Aborts when the call is cancelled by its client or the server closes: what
 * the Go servers read from the call's context.
 */
export class CallSignals {
  private readonly closing = new AbortController();

  constructor(private readonly server: EtcdServer) {}

  /**
   * Runs a recipe as the call's user: its reads and writes of the member are
   * checked against that user's permissions when auth is on, as etcd's lock
   * and election servers pass their call's context to the client they use.
   */
  async asCaller<T>(call: unknown, body: () => Promise<T>): Promise<T> {
    const auth = await authInfoOf(this.server, call);
    return callerAuth.run(auth, body);
  }

  forCall(call: { on?: (event: "cancelled", listener: () => void) => unknown }): AbortSignal {
    const controller = new AbortController();
    call.on?.("cancelled", () => controller.abort());
    return AbortSignal.any([controller.signal, this.closing.signal]);
  }

  close(): void {
    this.closing.abort();
  }
}

/**
 * The status of a failed lock or election call. etcd's servers call the
 * member through a Go client, which turns the member's errors into plain
 * errors: grpc-go then sends them with code Unknown and the same words.
 */
export function recipeError(error: unknown): Partial<grpc.StatusObject> {
  return { code: GrpcCode.Unknown, details: toServiceError(error).details ?? "" };
}
