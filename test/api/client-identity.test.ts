// The hook auth needs: the common name of a verified client certificate, read
// from what a gRPC handler or an HTTP/1.1 handler holds, through the client
// port's own TLS layer and first-bytes routing (gRPC through the :authority
// rewriter).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import * as net from "node:net";
import { after, before, describe, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { clientCommonName } from "../../src/api/client-identity.js";
import { clientTlsServerOptions, createClientTlsServer, type ClientTlsLayer } from "../../src/api/client-tls.js";
import { serviceDefinition } from "../../src/api/grpc.js";
import { GrpcServer, listenOn } from "../../src/api/grpc-server.js";
import { routeClientConnection } from "../../src/api/server.js";
import { Maintenance, StatusRequestSchema, StatusResponseSchema, type StatusResponse } from "../../src/gen/etcdserverpb/rpc_pb.js";
import { silentLogger } from "../../src/server/logger.js";
import { TestPki } from "../transport/tls-certs.js";

const anonymous = "<none>";

/** A client port serving one gRPC method and one HTTP/1.1 answer, both of which say who the client is. */
class IdentityPort {
  readonly grpcServer = new GrpcServer({ maxReceiveMessageBytes: 1 << 20, maxConcurrentStreams: 100 });
  readonly httpServer = http.createServer((request, response) => response.end(clientCommonName(request) ?? anonymous));
  private readonly listeners: net.Server[] = [];

  constructor() {
    this.grpcServer.addService(serviceDefinition(Maintenance), {
      status: (call: grpc.ServerUnaryCall<unknown, StatusResponse>, callback: grpc.sendUnaryData<StatusResponse>) => callback(null, create(StatusResponseSchema, { version: clientCommonName(call) ?? anonymous })),
    });
  }

  /** Listens in plain text, or through a TLS layer; resolves with the port. */
  listen(tlsLayer?: ClientTlsLayer): Promise<number> {
    const listener = net.createServer((socket) => (tlsLayer === undefined ? routeClientConnection(socket, this.grpcServer, this.httpServer) : tlsLayer.accept(socket)));
    this.listeners.push(listener);
    return listenOn(listener, "127.0.0.1", 0);
  }

  async close(): Promise<void> {
    this.httpServer.closeAllConnections();
    await this.grpcServer.close();
    await Promise.all(this.listeners.map((listener) => new Promise((resolve) => listener.close(resolve))));
  }
}

interface Credentials {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

function askGrpc(port: number, credentials: Credentials | undefined): Promise<string> {
  const Client = grpc.makeGenericClientConstructor(serviceDefinition(Maintenance), "Maintenance");
  const channel = credentials === undefined ? grpc.credentials.createInsecure() : grpc.credentials.createSsl(credentials.ca, credentials.key, credentials.cert);
  const client = new Client(`127.0.0.1:${port}`, channel) as unknown as grpc.Client & { status: (request: unknown, callback: (error: grpc.ServiceError | null, response: StatusResponse) => void) => void };
  return new Promise((resolve, reject) => {
    client.status(create(StatusRequestSchema), (error, response) => {
      client.close();
      if (error) reject(error);
      else resolve(response.version);
    });
  });
}

function askHttp(port: number, credentials: Credentials | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const onResponse = (response: http.IncomingMessage): void => {
      let body = "";
      response.on("data", (chunk: Buffer) => (body += chunk.toString()));
      response.on("end", () => resolve(body));
    };
    const request = credentials === undefined ? http.get(`http://127.0.0.1:${port}/`, onResponse) : https.get(`https://127.0.0.1:${port}/`, { ...credentials, servername: "localhost", agent: false }, onResponse);
    request.on("error", reject);
  });
}

describe("clientCommonName: the verified client certificate's CN, per call", { timeout: 60_000 }, () => {
  const pki = new TestPki();
  const port = new IdentityPort();
  let alice: Credentials;
  let verifyingPort = 0;
  let nonVerifyingPort = 0;
  let plainPort = 0;

  before(async () => {
    pki.authority("ca");
    const server = pki.member("server", "ca", true);
    const user = pki.member("alice", "ca", true);
    alice = { ca: readFileSync(user.trustedCaFile!), cert: readFileSync(user.certFile), key: readFileSync(user.keyFile) };
    const base = { certFile: server.certFile, keyFile: server.keyFile, crlFile: undefined, allowedHostname: undefined, ciphers: [] };
    const serve = (socket: net.Socket): void => routeClientConnection(socket, port.grpcServer, port.httpServer);
    const verifying = createClientTlsServer(clientTlsServerOptions({ ...base, trustedCaFile: server.trustedCaFile, clientCertAuth: true }), silentLogger, serve);
    const nonVerifying = createClientTlsServer(clientTlsServerOptions({ ...base, trustedCaFile: undefined, clientCertAuth: false }), silentLogger, serve);
    verifyingPort = await port.listen(verifying);
    nonVerifyingPort = await port.listen(nonVerifying);
    plainPort = await port.listen();
  });
  after(async () => {
    await port.close();
    pki.remove();
  });

  test("a gRPC call over TLS with a verified client certificate carries its CN", async () => {
    assert.equal(await askGrpc(verifyingPort, alice), "alice");
  });

  test("an HTTP/1.1 request over TLS with a verified client certificate carries its CN", async () => {
    assert.equal(await askHttp(verifyingPort, alice), "alice");
  });

  test("no name without a verified certificate: plain text, or TLS that asks for none", async () => {
    assert.equal(await askGrpc(plainPort, undefined), anonymous);
    assert.equal(await askHttp(plainPort, undefined), anonymous);
    assert.equal(await askHttp(nonVerifyingPort, alice), anonymous, "a certificate not asked for is not taken");
    assert.equal(await askGrpc(nonVerifyingPort, { ...alice }), anonymous);
  });
});
