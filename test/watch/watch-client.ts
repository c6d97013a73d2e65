import { create, type MessageInitShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { serviceDefinition } from "../../src/api/grpc.js";
import { Watch, WatchRequestSchema, type WatchResponse } from "../../src/gen/etcdserverpb/rpc_pb.js";

type WatchRequestInit = MessageInitShape<typeof WatchRequestSchema>;
type CreateInit = Extract<NonNullable<WatchRequestInit["requestUnion"]>, { case: "createRequest" }>["value"];

/** How long a test waits for a condition on a stream before failing. */
export const streamWaitTimeoutMs = 20_000;

/**
 * A watch stream that records every response it receives, in order, for
 * tests and checkers to read. `pause` stops reading (the server then sees
 * backpressure) until `resume`.
 */
export class RecordedStream {
  readonly responses: WatchResponse[] = [];
  error: grpc.ServiceError | undefined;
  private readonly call: grpc.ClientDuplexStream<unknown, WatchResponse>;
  private waiters: Array<() => void> = [];

  constructor(client: grpc.Client & { watch(): grpc.ClientDuplexStream<unknown, WatchResponse> }) {
    this.call = client.watch();
    this.call.on("data", (response: WatchResponse) => {
      this.responses.push(response);
      this.wake();
    });
    this.call.on("error", (error: grpc.ServiceError) => {
      this.error = error;
      this.wake();
    });
  }

  send(request: WatchRequestInit["requestUnion"]): void {
    this.call.write(create(WatchRequestSchema, { requestUnion: request }));
  }

  watch(request: CreateInit): void {
    this.send({ case: "createRequest", value: request });
  }

  cancel(watchId: bigint): void {
    this.send({ case: "cancelRequest", value: { watchId } });
  }

  requestProgress(): void {
    this.send({ case: "progressRequest", value: {} });
  }

  pause(): void {
    this.call.pause();
  }

  resume(): void {
    this.call.resume();
  }

  /** Waits until `condition` holds over the responses so far; throws after the timeout. */
  async waitFor(condition: (responses: WatchResponse[]) => boolean, what: string, timeoutMs = streamWaitTimeoutMs): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!condition(this.responses)) {
      if (this.error !== undefined) throw new Error(`stream failed while waiting for ${what}: ${this.error.message}`);
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new Error(`timed out waiting for ${what} (${this.responses.length} responses)`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(remaining, 100));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Waits until no response has arrived for `quietMs`. */
  async settle(quietMs: number, timeoutMs = streamWaitTimeoutMs): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let seen = -1;
    while (seen !== this.responses.length) {
      if (Date.now() > deadline) throw new Error("stream did not settle");
      seen = this.responses.length;
      await new Promise((resolve) => setTimeout(resolve, quietMs));
    }
  }

  close(): void {
    this.call.cancel();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }
}

/** A Watch service client on one endpoint; every stream opened is closed by `close`. */
export class WatchClient {
  private readonly client: grpc.Client & { watch(): grpc.ClientDuplexStream<unknown, WatchResponse> };
  private readonly streams: RecordedStream[] = [];

  constructor(endpoint: string) {
    const Client = grpc.makeGenericClientConstructor(serviceDefinition(Watch), "Watch");
    this.client = new Client(endpoint, grpc.credentials.createInsecure(), { "grpc.max_receive_message_length": -1 }) as never;
  }

  open(): RecordedStream {
    const stream = new RecordedStream(this.client);
    this.streams.push(stream);
    return stream;
  }

  close(): void {
    for (const stream of this.streams) stream.close();
    this.client.close();
  }
}

/** The mod revision of an event's key-value as a number. */
export function eventRevision(event: { kv?: { modRevision: bigint } | undefined }): number {
  return Number(event.kv?.modRevision ?? 0n);
}

/** The responses of one watcher (by id), in order. */
export function responsesOf(responses: WatchResponse[], watchId: bigint): WatchResponse[] {
  return responses.filter((response) => response.watchId === watchId);
}
