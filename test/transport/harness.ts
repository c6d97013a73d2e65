import net from "node:net";
import { message, MessageType, type Message } from "../../src/raft/index.js";
import { PeerTransport, type PeerTransportOptions, type SnapshotStatus, type TransportLogger } from "../../src/transport/index.js";

/** Fast reconnection for tests; every other limit stays at its default. */
export const testLimits = { reconnectDelayMsMin: 10, reconnectDelayMsMax: 100, connectTimeoutMs: 2000 };

export interface LogLine {
  level: string;
  message: string;
  fields: Record<string, unknown>;
}

/** A logger that keeps every line, for assertions on what was refused and why. */
export function recordingLogger(): TransportLogger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: string) => (text: string, fields: Record<string, unknown> = {}) => void lines.push({ level, message: text, fields });
  return { lines, debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

/** A transport started on a free loopback port, with everything it reports recorded. */
export interface TestMember {
  transport: PeerTransport;
  url: string;
  received: Message[];
  unreachable: bigint[];
  snapshotStatuses: Array<{ peerId: bigint; status: SnapshotStatus }>;
  logger: ReturnType<typeof recordingLogger>;
}

export async function startMember(memberId: bigint, options: Partial<PeerTransportOptions> = {}): Promise<TestMember> {
  const logger = recordingLogger();
  const transport = new PeerTransport({ memberId, clusterId: 0xc1n, host: "127.0.0.1", port: 0, logger, ...options, limits: { ...testLimits, ...options.limits } });
  const member: TestMember = { transport, url: "", received: [], unreachable: [], snapshotStatuses: [], logger };
  transport.onMessage((received) => member.received.push(received));
  transport.onUnreachable((peerId) => member.unreachable.push(peerId));
  transport.onSnapshotStatus((peerId, status) => member.snapshotStatuses.push({ peerId, status }));
  await transport.start();
  member.url = transport.boundUrls[0]!;
  return member;
}

/** Connects every member to every other. */
export function connectAll(members: TestMember[]): void {
  for (const member of members) {
    for (const other of members) if (other !== member) member.transport.addPeer(other.transport.memberId, [other.url]);
  }
}

/** An append message whose `index` identifies it; `payloadBytes` of entry data. */
export function numbered(from: bigint, to: bigint, index: number, payloadBytes = 16): Message {
  const data = new Uint8Array(payloadBytes).fill(index % 251);
  return message({ type: MessageType.MsgApp, from, to, term: 1, index, logTerm: 1, entries: [{ term: 1, index: index + 1, type: 0, data }] });
}

export function range(first: number, count: number): number[] {
  return Array.from({ length: count }, (_, offset) => first + offset);
}

/** Polls `condition` on the event loop until it holds; fails with `description` after `timeoutMs`. */
export async function waitFor(condition: () => boolean, description: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${description}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A loopback port with nothing listening on it (bound, then released). */
export async function unusedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Stops every member, whatever happened in the test. */
export async function stopAll(members: Array<TestMember | undefined>): Promise<void> {
  await Promise.all(members.map((member) => member?.transport.stop()));
}
