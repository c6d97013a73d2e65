import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import { serviceDefinition } from "../../src/api/grpc.js";
import { Lease, LeaseKeepAliveRequestSchema, type LeaseKeepAliveResponse } from "../../src/gen/etcdserverpb/rpc_pb.js";

/** Sends one keep-alive for each id on one LeaseKeepAlive stream and returns the answers in order. */
export async function keepAlive(endpoint: string, ids: readonly bigint[]): Promise<LeaseKeepAliveResponse[]> {
  const Client = grpc.makeGenericClientConstructor(serviceDefinition(Lease), "Lease");
  const client = new Client(endpoint, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    leaseKeepAlive(): grpc.ClientDuplexStream<unknown, LeaseKeepAliveResponse>;
  };
  try {
    const stream = client.leaseKeepAlive();
    const responses: LeaseKeepAliveResponse[] = [];
    const done = new Promise<void>((resolve, reject) => {
      stream.on("data", (response: LeaseKeepAliveResponse) => {
        responses.push(response);
        if (responses.length === ids.length) resolve();
      });
      stream.on("error", reject);
    });
    for (const id of ids) stream.write(create(LeaseKeepAliveRequestSchema, { ID: id }));
    if (ids.length > 0) await done;
    stream.end();
    stream.cancel();
    return responses;
  } finally {
    client.close();
  }
}
