import { create, type DescMessage, type DescService, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { serviceDefinition } from "../../src/api/grpc.js";
import { KV, Lease, Maintenance } from "../../src/gen/etcdserverpb/rpc_pb.js";

/** The outcome of one call: a response, or a gRPC status code and message. */
export type CallResult<Response> = { ok: true; response: Response } | { ok: false; code: number; message: string };

type UnaryMethod = (request: unknown, callback: (error: grpc.ServiceError | null, response: unknown) => void) => void;

/** A plain gRPC client for one of etcd's services, built from the same descriptors as the server. */
export class ServiceClient {
  private readonly client: grpc.Client & Record<string, UnaryMethod>;

  constructor(
    private readonly service: DescService,
    endpoint: string,
  ) {
    const Client = grpc.makeGenericClientConstructor(serviceDefinition(service), service.name);
    this.client = new Client(endpoint, grpc.credentials.createInsecure(), { "grpc.max_receive_message_length": -1, "grpc.max_send_message_length": -1 }) as never;
  }

  /** Calls `method`; with `timeoutMs`, the call carries a deadline that far ahead. */
  call<Input extends DescMessage, Output extends DescMessage>(
    method: string,
    input: Input,
    init: MessageInitShape<Input>,
    _output?: Output,
    timeoutMs?: number,
    /** Metadata sent with the call, e.g. `{ token }`. */
    metadata: Record<string, string> = {},
  ): Promise<CallResult<MessageShape<Output>>> {
    const request = create(input, init);
    const options: grpc.CallOptions = timeoutMs === undefined ? {} : { deadline: Date.now() + timeoutMs };
    const sent = new grpc.Metadata();
    for (const [key, value] of Object.entries(metadata)) sent.set(key, value);
    return new Promise((resolve) => {
      (this.client[method] as unknown as (request: unknown, metadata: grpc.Metadata, options: grpc.CallOptions, callback: Parameters<UnaryMethod>[1]) => void).call(this.client, request, sent, options, (error, response) => {
        if (error) resolve({ ok: false, code: error.code, message: error.details });
        else resolve({ ok: true, response: response as MessageShape<Output> });
      });
    });
  }

  close(): void {
    this.client.close();
  }
}

/** Clients of KV, Maintenance and Lease on one endpoint. */
export class EtcdClient {
  readonly kv: ServiceClient;
  readonly maintenance: ServiceClient;
  readonly lease: ServiceClient;

  constructor(endpoint: string) {
    this.kv = new ServiceClient(KV, endpoint);
    this.maintenance = new ServiceClient(Maintenance, endpoint);
    this.lease = new ServiceClient(Lease, endpoint);
  }

  close(): void {
    this.kv.close();
    this.maintenance.close();
    this.lease.close();
  }
}
