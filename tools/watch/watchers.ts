import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { serviceDefinition } from "../../src/api/grpc.js";
import { Watch, WatchRequestSchema, type WatchResponse } from "../../src/gen/etcdserverpb/rpc_pb.js";

type WatchCall = grpc.ClientDuplexStream<unknown, WatchResponse>;
type WatchClient = grpc.Client & { watch(): WatchCall };

export interface WatchRange {
  key: Buffer;
  rangeEnd?: Buffer;
}

/** Streams opened per gRPC connection at most: watchers spread over several connections, as many clients would. */
const streamsPerConnection = 100;
const createTimeoutMs = 120_000;

/**
 * Many watchers over many streams for the benchmark: every event received is
 * passed to `onEvent` with the time it arrived.
 */
export class WatcherFleet {
  private readonly clients: WatchClient[] = [];
  private readonly calls: WatchCall[] = [];
  private created = 0;

  constructor(
    private readonly endpoint: string,
    private readonly onEvent: (value: Buffer, arrivedNs: bigint) => void = () => undefined,
  ) {}

  /** Opens `streams` streams and `watchers` watchers on them, spread evenly; `range(i)` is watcher i's key range. */
  async open(streams: number, watchers: number, range: (index: number) => WatchRange): Promise<void> {
    for (let index = 0; index < streams; index++) this.calls.push(this.openStream());
    await this.add(watchers, range, this.calls.length - streams);
  }

  /** Adds `watchers` watchers spread over the streams from `firstStream` on, and waits until all are created. */
  async add(watchers: number, range: (index: number) => WatchRange, firstStream = 0): Promise<void> {
    const streams = this.calls.length - firstStream;
    const target = this.created + watchers;
    for (let index = 0; index < watchers; index++) {
      const call = this.calls[firstStream + (index % streams)]!;
      call.write(create(WatchRequestSchema, { requestUnion: { case: "createRequest", value: range(index) } }));
    }
    const deadline = Date.now() + createTimeoutMs;
    while (this.created < target) {
      if (Date.now() > deadline) throw new Error(`only ${this.created} of ${target} watchers created`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  close(): void {
    for (const call of this.calls) call.cancel();
    for (const client of this.clients) client.close();
  }

  private openStream(): WatchCall {
    const connection = Math.floor(this.calls.length / streamsPerConnection);
    if (this.clients[connection] === undefined) {
      const Client = grpc.makeGenericClientConstructor(serviceDefinition(Watch), "Watch");
      this.clients[connection] = new Client(this.endpoint, grpc.credentials.createInsecure(), { "tetcd.bench.channel": connection, "grpc.max_receive_message_length": -1 }) as never;
    }
    const call = this.clients[connection]!.watch();
    call.on("data", (response: WatchResponse) => {
      const arrivedNs = process.hrtime.bigint();
      if (response.created) this.created++;
      for (const event of response.events) this.onEvent(Buffer.from(event.kv?.value ?? []), arrivedNs);
    });
    call.on("error", () => undefined);
    return call;
  }
}
