import * as http2 from "node:http2";
import { readFileSync } from "node:fs";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { AuthenticateRequestSchema, AuthenticateResponseSchema, PutRequestSchema, RangeRequestSchema } from "../../src/gen/etcdserverpb/rpc_pb.js";

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
  /** With client TLS: the CA that signed the servers' certificates. */
  caFile?: string;
  /** With auth: the user whose token every request carries. */
  user?: { name: string; password: string };
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
function makeCall(session: http2.ClientHttp2Session, path: string, token?: string): (bytes: Buffer, done: (error: string | undefined, body: Buffer) => void) => void {
  const headers = { ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", ...(token === undefined ? {} : { token }) };
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
    const chunks: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("close", () => done(status === "0" ? undefined : (message ?? `grpc-status ${status ?? "missing"}, rst ${stream.rstCode}`), Buffer.concat(chunks)));
    stream.end(frame);
  };
}

/** Asks for a token as `user`, as clients do once auth is on. */
function authenticate(session: http2.ClientHttp2Session, user: { name: string; password: string }): Promise<string> {
  const request = Buffer.from(toBinary(AuthenticateRequestSchema, create(AuthenticateRequestSchema, user)));
  return new Promise((resolve, reject) =>
    makeCall(session, "/etcdserverpb.Auth/Authenticate")(request, (error, body) => {
      if (error !== undefined) reject(new Error(`authenticate: ${error}`));
      else resolve(fromBinary(AuthenticateResponseSchema, body.subarray(5)).token);
    }),
  );
}

export async function runWorker(task: WorkerTask): Promise<WorkerResult> {
  const tls = task.caFile === undefined ? undefined : { ca: readFileSync(task.caFile) };
  const sessions = Array.from({ length: task.connections }, (_, index) => http2.connect(`${tls === undefined ? "http" : "https"}://${task.endpoints[index % task.endpoints.length]}`, tls));
  const path = task.workload === "put" ? "/etcdserverpb.KV/Put" : "/etcdserverpb.KV/Range";
  const token = task.user === undefined ? undefined : await authenticate(sessions[0]!, task.user);
  const calls = sessions.map((session) => makeCall(session, path, token));
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
