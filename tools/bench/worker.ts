import * as http2 from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { PutRequestSchema, RangeRequestSchema } from "../../src/gen/etcdserverpb/rpc_pb.js";

/** What the coordinator asks one worker process to do. */
export interface WorkerTask {
  /** Connections are spread over these, round robin. */
  endpoints: string[];
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

/**
 * A minimal unary gRPC call on one HTTP/2 session: the 5-byte length prefix,
 * the request bytes, and the grpc-status trailer. The generator must cost far
 * less than the servers it measures, and a general gRPC client does not.
 */
function makeCall(session: http2.ClientHttp2Session, path: string): (bytes: Buffer, done: (error: string | undefined) => void) => void {
  const headers = { ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers" };
  return (bytes, done) => {
    const stream = session.request(headers);
    const frame = Buffer.allocUnsafe(5 + bytes.length);
    frame[0] = 0;
    frame.writeUInt32BE(bytes.length, 1);
    bytes.copy(frame, 5);
    let status: string | undefined;
    let message: string | undefined;
    const readStatus = (fields: http2.IncomingHttpHeaders): void => {
      if (fields["grpc-status"] !== undefined) {
        status = String(fields["grpc-status"]);
        message = fields["grpc-message"] === undefined ? undefined : decodeURIComponent(String(fields["grpc-message"]));
      }
    };
    stream.on("response", readStatus);
    stream.on("trailers", readStatus);
    stream.on("data", () => undefined);
    stream.on("close", () => done(status === "0" ? undefined : (message ?? `grpc-status ${status ?? "missing"}, rst ${stream.rstCode}`)));
    stream.end(frame);
  };
}

export async function runWorker(task: WorkerTask): Promise<WorkerResult> {
  const sessions = Array.from({ length: task.connections }, (_, index) => http2.connect(`http://${task.endpoints[index % task.endpoints.length]}`));
  const path = task.workload === "put" ? "/etcdserverpb.KV/Put" : "/etcdserverpb.KV/Range";
  const calls = sessions.map((session) => makeCall(session, path));
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
            if (error !== undefined) {
              errors++;
              firstError ??= error;
            } else completed++;
            issue();
          });
        };
        issue();
      }),
    ),
  );
  const elapsedMs = performance.now() - started;
  for (const session of sessions) session.close();
  return { completed, errors, firstError, latenciesUs, elapsedMs };
}

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
