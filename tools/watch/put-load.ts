import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { serviceDefinition } from "../../src/api/grpc.js";
import { KV, PutRequestSchema } from "../../src/gen/etcdserverpb/rpc_pb.js";

/** What the parent sends: where and how hard to put. */
export interface PutLoadTask {
  endpoint: string;
  clients: number;
  connections: number;
  durationMs: number;
  prefix: string;
  keys: number;
  valueBytes: number;
}

export interface PutLoadResult {
  completed: number;
  errors: number;
  elapsedMs: number;
}

type PutMethod = (request: unknown, callback: (error: grpc.ServiceError | null) => void) => void;

/** Runs `clients` put loops over `connections` channels for `durationMs` (a child process of the benchmark). */
async function run(task: PutLoadTask): Promise<PutLoadResult> {
  const Client = grpc.makeGenericClientConstructor(serviceDefinition(KV), "KV");
  const channels = Array.from({ length: task.connections }, (_, index) => new Client(task.endpoint, grpc.credentials.createInsecure(), { "tetcd.bench.channel": index }) as unknown as grpc.Client & { put: PutMethod });
  const value = Buffer.alloc(task.valueBytes, 120);
  const started = Date.now();
  let completed = 0;
  let errors = 0;
  await Promise.all(
    Array.from({ length: task.clients }, async (_, client) => {
      const channel = channels[client % channels.length]!;
      for (let index = 0; Date.now() - started < task.durationMs; index++) {
        const key = Buffer.from(`${task.prefix}${(client * 7919 + index) % task.keys}`);
        await new Promise<void>((resolve) =>
          channel.put(create(PutRequestSchema, { key, value }), (error) => {
            if (error) errors++;
            else completed++;
            resolve();
          }),
        );
      }
    }),
  );
  const elapsedMs = Date.now() - started;
  for (const channel of channels) channel.close();
  return { completed, errors, elapsedMs };
}

process.once("message", (task: PutLoadTask) => {
  run(task).then(
    (result) => process.send!(result, () => process.exit(0)),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
});
