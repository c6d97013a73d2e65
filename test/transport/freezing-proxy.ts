import net from "node:net";

/**
 * A TCP proxy to a loopback port that can be frozen: while frozen it reads and
 * forwards nothing, and closes nothing, as a peer host that vanished without a
 * reset would. Thawing drops the frozen connections and forwards again.
 */
export class FreezingProxy {
  private readonly server: net.Server;
  private readonly connections = new Set<net.Socket>();
  private frozen = false;

  constructor(private readonly targetPort: number) {
    this.server = net.createServer((client) => this.accept(client));
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  freeze(): void {
    this.frozen = true;
    for (const socket of this.connections) socket.pause();
  }

  thaw(): void {
    this.frozen = false;
    for (const socket of this.connections) socket.destroy();
  }

  async close(): Promise<void> {
    for (const socket of this.connections) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    const upstream = net.connect(this.targetPort, "127.0.0.1");
    for (const socket of [client, upstream]) {
      this.connections.add(socket);
      socket.on("error", () => {});
      socket.on("close", () => {
        this.connections.delete(socket);
        client.destroy();
        upstream.destroy();
      });
      if (this.frozen) socket.pause();
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
