import * as http2 from "node:http2";
import * as net from "node:net";
import { Duplex } from "node:stream";
import type * as grpc from "@grpc/grpc-js";
import { GrpcCode } from "../server/errors.js";
import { encodeGrpcMessage, FrameReader, frameMessage } from "./grpc-frames.js";

/**
 * A small gRPC server on node:http2, for the shapes of call etcd's API has
 * (unary, server-streaming, bidirectional). It does per call only what the
 * protocol needs, which leaves the CPU to the store. Handlers are written as
 * for grpc-js: a unary handler gets `(call, callback)`, a streaming one a
 * Duplex whose readable side yields requests and whose writable side sends
 * responses (write() returns false and 'drain' follows, for back-pressure).
 */
export interface GrpcServerOptions {
  maxReceiveMessageBytes: number;
  maxConcurrentStreams: number;
  /** Refuses a call before it runs, from its method path and metadata: a gRPC code and message, or undefined to admit it. */
  admit?: (path: string, metadata: http2.IncomingHttpHeaders, stream: http2.ServerHttp2Stream) => Refusal | undefined | Promise<Refusal | undefined>;
  /** Told of every call of a known method, for the metrics (go-grpc-prometheus's counts). */
  observer?: GrpcCallObserver;
}

/** Why a call is refused before it runs: a gRPC code and message. */
export interface Refusal {
  grpcCode: number;
  message: string;
}

/** A method as go-grpc-prometheus labels it. */
export interface MethodLabels {
  grpc_type: "unary" | "client_stream" | "server_stream" | "bidi_stream";
  grpc_service: string;
  grpc_method: string;
}

export interface GrpcCallObserver {
  /** `clientApiVersion`: what the client's `client-api-version` metadata says (etcd's clients send it). */
  started(method: MethodLabels, clientApiVersion: string | undefined): void;
  received(method: MethodLabels, bytes: number): void;
  sent(method: MethodLabels, bytes: number): void;
  handled(method: MethodLabels, code: number, seconds: number): void;
}

type Handler = (call: never, callback?: never) => void;

interface Method {
  definition: grpc.MethodDefinition<unknown, unknown>;
  handler: Handler;
  labels: MethodLabels;
}

/** The labels of a method, from its path and its streaming shape. */
export function methodLabels(definition: grpc.MethodDefinition<unknown, unknown>): MethodLabels {
  const [, service = "", name = ""] = /^\/([^/]*)\/(.*)$/.exec(definition.path) ?? [];
  const type = definition.requestStream ? (definition.responseStream ? "bidi_stream" : "client_stream") : definition.responseStream ? "server_stream" : "unary";
  return { grpc_type: type, grpc_service: service, grpc_method: name };
}

const responseHeaders = { ":status": 200, "content-type": "application/grpc" };

export class GrpcServer {
  private readonly methods = new Map<string, Method>();
  private readonly http2Server: http2.Http2Server;
  private readonly listeners: net.Server[] = [];
  private readonly sessions = new Set<http2.ServerHttp2Session>();

  constructor(private readonly options: GrpcServerOptions) {
    this.http2Server = http2.createServer({ settings: { maxConcurrentStreams: options.maxConcurrentStreams } });
    this.http2Server.on("session", (session) => {
      this.sessions.add(session);
      session.on("close", () => this.sessions.delete(session));
      session.on("error", () => session.destroy());
    });
    this.http2Server.on("stream", (stream, headers) => this.onStream(stream, headers));
  }

  addService(definition: grpc.ServiceDefinition, implementation: grpc.UntypedServiceImplementation): void {
    for (const [name, method] of Object.entries(definition)) {
      const handler = implementation[name];
      const typed = method as grpc.MethodDefinition<unknown, unknown>;
      if (handler !== undefined) this.methods.set(method.path, { definition: typed, handler: handler as Handler, labels: methodLabels(typed) });
    }
  }

  /** The labels of every method served. */
  methodLabels(): MethodLabels[] {
    return [...this.methods.values()].map((method) => method.labels);
  }

  /**
   * Serves HTTP/2 on a connection accepted elsewhere (its first bytes may
   * already be buffered in it); returns the session made for it (the HTTP/2
   * server makes it while the connection is handed over).
   */
  acceptConnection(socket: net.Socket | Duplex): http2.ServerHttp2Session | undefined {
    let session: http2.ServerHttp2Session | undefined;
    const made = (created: http2.ServerHttp2Session): void => {
      session = created;
    };
    this.http2Server.once("session", made);
    this.http2Server.emit("connection", socket);
    this.http2Server.off("session", made);
    return session;
  }

  /** Listens on host:port (0 for any free port) for gRPC alone; resolves with the port. */
  listen(host: string, port: number): Promise<number> {
    const listener = net.createServer((socket) => this.acceptConnection(socket));
    this.listeners.push(listener);
    return listenOn(listener, host, port);
  }

  async close(): Promise<void> {
    const closing = this.listeners.map((listener) => new Promise<void>((resolve) => listener.close(() => resolve())));
    for (const session of this.sessions) session.close();
    const timer = setTimeout(() => {
      for (const session of this.sessions) session.destroy();
    }, 1000);
    await Promise.all(closing);
    while (this.sessions.size > 0) await new Promise((resolve) => setTimeout(resolve, 10));
    clearTimeout(timer);
  }

  /** Go gRPC's wording, which etcd's clients print. */
  private unknownMethodMessage(path: string): string {
    const [, service = "", name = ""] = /^\/([^/]*)\/(.*)$/.exec(path) ?? [];
    const serviceKnown = [...this.methods.keys()].some((known) => known.startsWith(`/${service}/`));
    return serviceKnown ? `unknown method ${name} for service ${service}` : `unknown service ${service}`;
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    stream.on("error", () => undefined);
    const path = String(headers[":path"]);
    const method = this.methods.get(path);
    if (method === undefined) return sendStatus(stream, GrpcCode.Unimplemented, this.unknownMethodMessage(path));
    if (!String(headers["content-type"] ?? "").startsWith("application/grpc")) {
      stream.respond({ ":status": 415 }, { endStream: true });
      return;
    }
    const observer = this.options.observer;
    observer?.started(method.labels, headers["client-api-version"] as string | undefined);
    const refusal = this.options.admit?.(path, headers, stream);
    if (refusal instanceof Promise) {
      // Checks that need I/O (a signed token's verification): the stream's data waits, buffered, for the answer.
      refusal.then(
        (answer) => this.admitted(stream, headers, method, answer),
        (error: unknown) => this.admitted(stream, headers, method, { grpcCode: GrpcCode.Internal, message: String(error) }),
      );
      return;
    }
    this.admitted(stream, headers, method, refusal);
  }

  /** Starts a call once its admission is known: refused with `refusal`, or run. */
  private admitted(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, method: Method, refusal: Refusal | undefined): void {
    const observer = this.options.observer;
    if (refusal !== undefined) {
      stream.resume();
      observer?.handled(method.labels, refusal.grpcCode, 0);
      return sendStatus(stream, refusal.grpcCode, refusal.message);
    }
    if (stream.destroyed) return;
    const call = new ServerCall(stream, headers, method.definition, this.options.maxReceiveMessageBytes, observer === undefined ? undefined : { observer, labels: method.labels, started: performance.now() });
    if (method.definition.requestStream) {
      (method.handler as (call: ServerCall) => void)(call);
      return;
    }
    // Unary and server-streaming calls start with their one request.
    call.once("data", (request: unknown) => {
      call.request = request;
      if (method.definition.responseStream) (method.handler as (call: ServerCall) => void)(call);
      else (method.handler as unknown as (call: ServerCall, callback: grpc.sendUnaryData<unknown>) => void)(call, (error, response) => call.finishUnary(error, response));
    });
    call.once("end", () => {
      if (call.request === undefined) call.fail(GrpcCode.Internal, "request message missing");
    });
  }
}

/** One call: requests come out of its readable side, responses go into its writable side. */
export class ServerCall extends Duplex {
  request: unknown;
  readonly metadata: http2.IncomingHttpHeaders;
  cancelled = false;
  private readonly reader: FrameReader;
  private headersSent = false;
  private finished = false;

  constructor(
    /** The HTTP/2 stream the call rides on. */
    readonly stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    private readonly definition: grpc.MethodDefinition<unknown, unknown>,
    maxReceiveMessageBytes: number,
    private readonly observed?: { observer: GrpcCallObserver; labels: MethodLabels; started: number },
  ) {
    super({ objectMode: true, allowHalfOpen: true });
    this.metadata = headers;
    this.reader = new FrameReader(maxReceiveMessageBytes);
    stream.on("data", (chunk: Buffer) => this.onData(chunk, maxReceiveMessageBytes));
    stream.on("end", () => this.push(null));
    stream.on("close", () => {
      if (this.finished) return;
      this.finished = true;
      this.cancelled = true;
      if (this.observed !== undefined) this.observed.observer.handled(this.observed.labels, GrpcCode.Canceled, (performance.now() - this.observed.started) / 1000);
      this.emit("cancelled", "cancelled");
      this.destroy();
    });
  }

  private onData(chunk: Buffer, maxReceiveMessageBytes: number): void {
    for (const event of this.reader.push(chunk)) {
      if (event.kind === "too-large") return this.fail(GrpcCode.ResourceExhausted, `grpc: received message larger than max (${event.length} vs. ${maxReceiveMessageBytes})`);
      const refusal = this.compressionRefusal(event.kind === "compressed");
      if (refusal !== undefined) return this.fail(refusal.code, refusal.message);
      if (event.kind === "compressed") return;
      let request: unknown;
      try {
        request = this.definition.requestDeserialize(event.message);
      } catch (error) {
        return this.fail(GrpcCode.Internal, `grpc: error unmarshalling request: ${(error as Error).message}`);
      }
      this.observed?.observer.received(this.observed.labels, event.message.length);
      // Back-pressure: when the handler is behind, stop reading the HTTP/2
      // stream; its flow-control window then holds the client back.
      if (!this.push(request)) this.stream.pause();
    }
  }

  /**
   * No decompressor is installed, as in etcd: grpc-go's answer to a message
   * on a stream that names an encoding, or compressed without naming one.
   */
  private compressionRefusal(compressed: boolean): { code: GrpcCode; message: string } | undefined {
    const encoding = this.metadata["grpc-encoding"];
    if (encoding !== undefined && encoding !== "identity") return { code: GrpcCode.Unimplemented, message: `grpc: Decompressor is not installed for grpc-encoding "${String(encoding)}"` };
    if (compressed) return { code: GrpcCode.Internal, message: "grpc: compressed flag set with identity or empty encoding" };
    return undefined;
  }

  override _read(): void {
    this.stream.resume();
  }

  override _write(response: unknown, _: BufferEncoding, done: (error?: Error | null) => void): void {
    if (this.finished) return done();
    this.sendHeaders();
    const frame = frameMessage(this.definition.responseSerialize(response));
    this.observed?.observer.sent(this.observed.labels, frame.length - 5);
    this.stream.write(frame, () => done());
  }

  /** Ending the writable side ends the call with status OK. */
  override _final(done: (error?: Error | null) => void): void {
    this.finish(GrpcCode.Ok, "");
    done();
  }

  finishUnary(error: grpc.ServiceError | Partial<grpc.StatusObject> | null | undefined, response: unknown): void {
    if (error !== null && error !== undefined) return this.fail(error.code ?? GrpcCode.Unknown, error.details ?? "");
    if (this.finished) return;
    this.sendHeaders();
    const frame = frameMessage(this.definition.responseSerialize(response));
    this.observed?.observer.sent(this.observed.labels, frame.length - 5);
    this.stream.write(frame);
    this.finish(GrpcCode.Ok, "");
  }

  /** Ends the call with a status other than OK. */
  fail(code: number, message: string): void {
    this.finish(code, message);
    this.destroy();
  }

  private sendHeaders(): void {
    if (this.headersSent) return;
    this.headersSent = true;
    this.stream.respond(responseHeaders, { waitForTrailers: true });
  }

  private finish(code: number, message: string): void {
    if (this.finished || this.stream.destroyed) return;
    this.finished = true;
    if (this.observed !== undefined) this.observed.observer.handled(this.observed.labels, code, (performance.now() - this.observed.started) / 1000);
    const status = { "grpc-status": String(code), "grpc-message": encodeGrpcMessage(message) };
    if (!this.headersSent) {
      // Trailers-only response: the status travels in the headers.
      this.headersSent = true;
      this.stream.respond({ ...responseHeaders, ...status }, { endStream: true });
      return;
    }
    this.stream.once("wantTrailers", () => this.stream.sendTrailers(status));
    this.stream.end();
  }
}

/** Starts `listener` on host:port; resolves with the port it got. */
export function listenOn(listener: net.Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    listener.once("error", reject);
    listener.listen(port, host, () => {
      listener.off("error", reject);
      const address = listener.address();
      resolve(typeof address === "object" && address !== null ? address.port : port);
    });
  });
}

/** A call refused before it starts: a trailers-only response. */
function sendStatus(stream: http2.ServerHttp2Stream, code: number, message: string): void {
  stream.respond({ ...responseHeaders, "grpc-status": String(code), "grpc-message": encodeGrpcMessage(message) }, { endStream: true });
}
