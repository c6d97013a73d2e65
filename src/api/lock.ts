import { create } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { lock, unlock } from "../concurrency/mutex.js";
import type { RecipeBackend } from "../concurrency/recipes.js";
import { LockResponseSchema, UnlockResponseSchema, type LockRequest, type UnlockRequest } from "../gen/v3lockpb/v3lock_pb.js";
import { recipeError, type CallSignals } from "./recipe-backend.js";

/** etcd's Lock service (v3lockpb): a lock held by a lease's key until unlocked or the lease ends. */
export function lockService(backend: RecipeBackend, signals: CallSignals): grpc.UntypedServiceImplementation {
  return {
    lock: recipeCall(signals, async (request: LockRequest, signal) => {
      const held = await lock(backend, request.name, request.lease, signal);
      return create(LockResponseSchema, { header: held.header, key: held.key });
    }),
    unlock: recipeCall(signals, async (request: UnlockRequest) => create(UnlockResponseSchema, { header: await unlock(backend, request.key) })),
  };
}

/** A unary handler for a recipe: it gets the call's abort signal; every failure has code Unknown, as in etcd. */
export function recipeCall<Request, Response>(signals: CallSignals, handler: (request: Request, signal: AbortSignal) => Promise<Response>): grpc.handleUnaryCall<Request, Response> {
  return (call, callback) => {
    const signal = signals.forCall(call as never);
    signals.asCaller(call, () => handler(call.request, signal)).then(
      (response) => callback(null, response),
      (error: unknown) => callback(recipeError(error)),
    );
  };
}
