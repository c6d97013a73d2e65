import { fromBinary, toBinary, type DescMessage, type DescService, type MessageShape } from "@bufbuild/protobuf";
import type * as grpc from "@grpc/grpc-js";
import { EtcdError, GrpcCode } from "../server/errors.js";
import { goCompatibleBytes } from "./wire-types.js";

/**
 * Turns a protobuf-es service descriptor into a grpc-js service definition, so
 * that paths and codecs come from the `.proto` files and nothing else.
 */
export function serviceDefinition(service: DescService): grpc.ServiceDefinition {
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    definition[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestSerialize: (message) => Buffer.from(toBinary(method.input, message as MessageShape<DescMessage>)),
      requestDeserialize: (bytes: Buffer) => fromBinary(method.input, goCompatibleBytes(method.input, bytes)),
      responseSerialize: (message) => Buffer.from(toBinary(method.output, message as MessageShape<DescMessage>)),
      responseDeserialize: (bytes: Buffer) => fromBinary(method.output, bytes),
    };
  }
  return definition;
}

/** A gRPC status as etcd sends it: its code and its message. */
export function toServiceError(error: unknown): Partial<grpc.StatusObject> {
  if (error instanceof EtcdError) return { code: error.grpcCode, details: error.message };
  return { code: GrpcCode.Unknown, details: error instanceof Error ? error.message : String(error) };
}

/** A unary handler from an async function; errors become etcd's gRPC statuses. */
export function unary<Request, Response>(handler: (request: Request, call: grpc.ServerUnaryCall<Request, Response>) => Promise<Response> | Response): grpc.handleUnaryCall<Request, Response> {
  return (call, callback) => {
    let result: Promise<Response> | Response;
    try {
      result = handler(call.request, call);
    } catch (error) {
      callback(toServiceError(error));
      return;
    }
    Promise.resolve(result).then(
      (response) => callback(null, response),
      (error: unknown) => callback(toServiceError(error)),
    );
  };
}
