import { fromJson, toJson, type DescMethod, type DescService, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { serviceDefinition } from "../../src/api/grpc.js";
import { KV, Lease } from "../../src/gen/etcdserverpb/rpc_pb.js";
import { Election } from "../../src/gen/v3electionpb/v3election_pb.js";
import { Lock } from "../../src/gen/v3lockpb/v3lock_pb.js";

/**
 * One way to call a server: gRPC or the JSON gateway. Requests are proto3
 * JSON (proto field names); answers come back in the same form, or as
 * `{ code, message }` (plus the HTTP status through the gateway), with the
 * header's cluster id, member id and raft term removed.
 */
export interface Transport {
  call(path: string, request: JsonObject): Promise<JsonObject>;
  /** Starts an Observe; `responses` fills as leaders come. */
  observe(request: JsonObject): Observation;
  close(): void;
}

export interface Observation {
  readonly responses: JsonObject[];
  stop(): void;
}

/** The gateway paths the tests use, and their gRPC methods. */
const methods: Record<string, [DescService, string]> = {
  "kv/range": [KV, "range"],
  "lease/grant": [Lease, "leaseGrant"],
  "lease/revoke": [Lease, "leaseRevoke"],
  "lock/lock": [Lock, "lock"],
  "lock/unlock": [Lock, "unlock"],
  "election/campaign": [Election, "campaign"],
  "election/proclaim": [Election, "proclaim"],
  "election/leader": [Election, "leader"],
  "election/resign": [Election, "resign"],
};

function methodOf(path: string): { service: DescService; method: DescMethod } {
  const [service, localName] = methods[path] ?? [];
  const method = service?.methods.find((candidate) => candidate.localName === localName);
  if (service === undefined || method === undefined) throw new Error(`no method for ${path}`);
  return { service, method };
}

/** Removes what differs between servers by nature from an answer. */
export function normalize(json: JsonObject): JsonObject {
  const header = json["header"] as JsonObject | undefined;
  if (header !== undefined) {
    delete header["cluster_id"];
    delete header["member_id"];
    delete header["raft_term"];
  }
  return json;
}

export class GrpcTransport implements Transport {
  private readonly clients = new Map<DescService, grpc.Client & Record<string, (...args: unknown[]) => unknown>>();

  constructor(private readonly endpoint: string) {}

  private client(service: DescService) {
    let client = this.clients.get(service);
    if (client === undefined) {
      const Client = grpc.makeGenericClientConstructor(serviceDefinition(service), service.name);
      client = new Client(this.endpoint, grpc.credentials.createInsecure()) as never;
      this.clients.set(service, client!);
    }
    return client!;
  }

  call(path: string, request: JsonObject): Promise<JsonObject> {
    const { service, method } = methodOf(path);
    const message = fromJson(method.input, request);
    return new Promise((resolve) => {
      const client = this.client(service);
      (client[method.localName] as (request: unknown, callback: (error: grpc.ServiceError | null, response: unknown) => void) => void).call(client, message, (error, response) => {
        if (error !== null) resolve({ code: error.code, message: error.details });
        else resolve(normalize(toJson(method.output, response as never, { useProtoFieldName: true }) as JsonObject));
      });
    });
  }

  observe(request: JsonObject): Observation {
    const method = Election.methods.find((candidate) => candidate.localName === "observe")!;
    const client = this.client(Election);
    const stream = (client["observe"] as (request: unknown) => grpc.ClientReadableStream<unknown>).call(client, fromJson(method.input, request));
    const responses: JsonObject[] = [];
    stream.on("data", (response) => responses.push(normalize(toJson(method.output, response as never, { useProtoFieldName: true }) as JsonObject)));
    stream.on("error", () => undefined);
    return { responses, stop: () => stream.cancel() };
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
  }
}

export class GatewayTransport implements Transport {
  private readonly observations: AbortController[] = [];

  constructor(private readonly endpoint: string) {}

  async call(path: string, request: JsonObject): Promise<JsonObject> {
    const response = await fetch(`http://${this.endpoint}/v3/${path}`, { method: "POST", body: JSON.stringify(request) });
    const json = (await response.json()) as JsonObject;
    if (response.status !== 200) return { status: response.status, code: json["code"] as JsonValue, message: json["message"] as JsonValue, error: json["error"] as JsonValue };
    return normalize(json);
  }

  observe(request: JsonObject): Observation {
    const controller = new AbortController();
    this.observations.push(controller);
    const responses: JsonObject[] = [];
    void (async () => {
      const response = await fetch(`http://${this.endpoint}/v3/election/observe`, { method: "POST", body: JSON.stringify(request), signal: controller.signal });
      let buffered = "";
      const decoder = new TextDecoder();
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffered += decoder.decode(chunk, { stream: true });
        for (let newline = buffered.indexOf("\n"); newline >= 0; newline = buffered.indexOf("\n")) {
          const line = JSON.parse(buffered.slice(0, newline)) as { result: JsonObject };
          responses.push(normalize(line.result));
          buffered = buffered.slice(newline + 1);
        }
      }
    })().catch(() => undefined);
    return { responses, stop: () => controller.abort() };
  }

  close(): void {
    for (const controller of this.observations) controller.abort();
  }
}
