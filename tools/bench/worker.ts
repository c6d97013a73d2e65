import { create, toBinary, fromBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { PutRequestSchema, PutResponseSchema, RangeRequestSchema, RangeResponseSchema } from "../../src/gen/etcdserverpb/rpc_pb.js";

/** What the coordinator asks one worker process to do. */
export interface WorkerTask {
  endpoint: string;
  workload: "put" | "range-serializable" | "range-linearizable";
  /** Requests kept in flight by this worker, spread over its connections. */
  concurrency: number;
  connections: number;
  durationMs: number;
  keySpace: number;
  valueBytes: number;
  seed: number;
}

export interface WorkerResult {
  completed: number;
  errors: number;
  firstError?: string;
  latenciesUs: number[];
  elapsedMs: number;
}

/** Raw unary calls with a pre-encoded request per key: the generator must not be the bottleneck. */
function makeCall(client: grpc.Client, path: string): (bytes: Buffer, done: (error: grpc.ServiceError | null) => void) => void {
  const identity = (value: Buffer): Buffer => value;
  return (bytes, done) => {
    client.makeUnaryRequest(path, identity, identity, bytes, (error) => done(error));
  };
}

export async function runWorker(task: WorkerTask): Promise<WorkerResult> {
  const clients = Array.from({ length: task.connections }, (_, index) => new grpc.Client(task.endpoint, grpc.credentials.createInsecure(), { "grpc.channel_id": index } as grpc.ChannelOptions));
  const path = task.workload === "put" ? "/etcdserverpb.KV/Put" : "/etcdserverpb.KV/Range";
  const calls = clients.map((client) => makeCall(client, path));
  const value = Buffer.alloc(task.valueBytes, 0x61);
  const requests: Buffer[] = [];
  for (let index = 0; index < task.keySpace; index++) {
    const key = Buffer.from(index.toString(16).padStart(8, "0"));
    requests.push(
      task.workload === "put"
        ? Buffer.from(toBinary(PutRequestSchema, create(PutRequestSchema, { key, value })))
        : Buffer.from(toBinary(RangeRequestSchema, create(RangeRequestSchema, { key, serializable: task.workload === "range-serializable" }))),
    );
  }
  let state = task.seed >>> 0 || 1;
  const nextKey = (): number => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) % task.keySpace;
  };
  const latenciesUs: number[] = [];
  let completed = 0;
  let errors = 0;
  let firstError: string | undefined;
  const started = performance.now();
  const deadline = started + task.durationMs;
  await Promise.all(
    Array.from({ length: task.concurrency }, (_, lane) =>
      new Promise<void>((resolve) => {
        const call = calls[lane % calls.length]!;
        const issue = (): void => {
          if (performance.now() >= deadline) return resolve();
          const sent = performance.now();
          call(requests[nextKey()]!, (error) => {
            latenciesUs.push(Math.round((performance.now() - sent) * 1000));
            if (error) {
              errors++;
              firstError ??= error.details;
            } else completed++;
            issue();
          });
        };
        issue();
      }),
    ),
  );
  const elapsedMs = performance.now() - started;
  for (const client of clients) client.close();
  return { completed, errors, firstError, latenciesUs, elapsedMs };
}

// Kept referenced so that response schemas stay importable for decoding checks.
export const responseSchemas = { PutResponseSchema, RangeResponseSchema, fromBinary };

if (process.send !== undefined) {
  process.once("message", (task: WorkerTask) => {
    runWorker(task).then(
      (result) => process.send!(result, () => process.exit(0)),
      (error: unknown) => {
        process.stderr.write(`bench worker failed: ${String(error)}\n`);
        process.exit(1);
      },
    );
  });
}
