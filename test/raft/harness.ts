/**
 * A small synchronous cluster for unit tests: RawNodes over MemoryStorage, a
 * network that delivers everything (unless a link is cut), and a pump that
 * persists each Ready, sends its messages, applies its entries and advances.
 */
import { RawNode } from "../../src/raft/raw-node.js";
import type { Ready } from "../../src/raft/raw-node.js";
import { MemoryStorage } from "../../src/raft/storage.js";
import { SeededRandom } from "../../src/raft/random.js";
import type { Config } from "../../src/raft/config.js";
import type { Entry, Message, NodeId } from "../../src/raft/messages.js";
import { EntryType, MessageType } from "../../src/raft/messages.js";
import { decodeConfChange, decodeConfChangeV2 } from "../../src/raft/codec.js";
import { RaftError } from "../../src/raft/errors.js";

export type NodeOptions = Partial<Omit<Config, "id" | "storage" | "random">>;

export interface TestNode {
  id: NodeId;
  node: RawNode;
  storage: MemoryStorage;
  applied: Entry[];
}

export function entry(index: number, term: number, data = ""): Entry {
  return { index, term, type: EntryType.EntryNormal, data: new TextEncoder().encode(data) };
}

export function text(entry: Entry): string {
  return new TextDecoder().decode(entry.data);
}

/**
 * Storage holding a snapshot at index 1 (term 1) with the given voters, then `entries`
 * (indexes from 2), and the hard state.
 */
export function presetStorage(voters: NodeId[], entries: Entry[], term: number, learners: NodeId[] = []): MemoryStorage {
  const storage = new MemoryStorage();
  storage.applySnapshot({
    data: new Uint8Array(0),
    metadata: { index: 1, term: 1, confState: { voters, learners, votersOutgoing: [], learnersNext: [], autoLeave: false } },
  });
  storage.append(entries);
  storage.setHardState({ term, vote: 0n, commit: 1 });
  return storage;
}

export class Cluster {
  readonly nodes = new Map<NodeId, TestNode>();
  private readonly cut = new Set<string>();
  readonly down = new Set<NodeId>();
  /** Every message sent, for assertions. */
  readonly sent: Message[] = [];
  /** Drops a message when it returns true (in addition to cut links and down nodes). */
  dropIf: ((message: Message) => boolean) | undefined = undefined;
  private seed = 1;

  /** A fresh cluster, bootstrapped with `voters`; extra ids start empty (to be added later). */
  static bootstrap(voters: NodeId[], options: NodeOptions = {}, spare: NodeId[] = []): Cluster {
    const cluster = new Cluster();
    for (const id of voters) {
      const test = cluster.add(id, new MemoryStorage(), options);
      test.node.bootstrap(voters.map((peer) => ({ id: peer })));
    }
    for (const id of spare) cluster.add(id, new MemoryStorage(), options);
    cluster.pump();
    return cluster;
  }

  add(id: NodeId, storage: MemoryStorage, options: NodeOptions = {}): TestNode {
    const node = new RawNode({ id, storage, random: new SeededRandom(this.seed++), ...options });
    const test = { id, node, storage, applied: [] };
    this.nodes.set(id, test);
    return test;
  }

  get(id: NodeId): TestNode {
    const test = this.nodes.get(id);
    if (test === undefined) throw new Error(`no node ${id}`);
    return test;
  }

  raft(id: NodeId) {
    return this.get(id).node.raft;
  }

  cutLink(from: NodeId, to: NodeId): void {
    this.cut.add(`${from}>${to}`);
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.cutLink(id, other);
      this.cutLink(other, id);
    }
  }

  heal(): void {
    this.cut.clear();
  }

  /** Handles one Ready of one node: persist, send, apply, advance. */
  handleReady(test: TestNode, ready: Ready): Message[] {
    if (ready.snapshot !== undefined) test.storage.applySnapshot(ready.snapshot);
    test.storage.append(ready.entries);
    if (ready.hardState !== undefined) test.storage.setHardState(ready.hardState);
    for (const committed of ready.committedEntries) {
      test.applied.push(committed);
      if (committed.type === EntryType.EntryConfChange) {
        const result = test.node.applyConfChange(decodeConfChange(committed.data));
        if (result instanceof RaftError) throw result;
      } else if (committed.type === EntryType.EntryConfChangeV2) {
        const result = test.node.applyConfChange(decodeConfChangeV2(committed.data));
        if (result instanceof RaftError) throw result;
      }
    }
    test.node.advance();
    return [...ready.messages, ...ready.messagesAfterPersist];
  }

  /** Runs every node's Ready and delivers every message until the cluster is quiet. */
  pump(maxRounds = 1000): void {
    for (let round = 0; round < maxRounds; round++) {
      const outgoing: Message[] = [];
      let handled = false;
      for (const test of this.nodes.values()) {
        if (this.down.has(test.id) || !test.node.hasReady()) continue;
        handled = true;
        outgoing.push(...this.handleReady(test, test.node.ready()));
      }
      if (!handled) return;
      for (const message of outgoing) this.deliver(message);
    }
    throw new Error("cluster did not quiesce");
  }

  deliver(message: Message): void {
    this.sent.push(message);
    if (this.cut.has(`${message.from}>${message.to}`) || this.down.has(message.to)) return;
    if (this.dropIf?.(message) === true) return;
    const target = this.nodes.get(message.to);
    target?.node.step(message);
  }

  tick(id: NodeId, ticks = 1): void {
    for (let i = 0; i < ticks; i++) this.get(id).node.tick();
  }

  /** Ticks every live node `ticks` times, pumping after each tick. */
  tickAll(ticks: number): void {
    for (let i = 0; i < ticks; i++) {
      for (const test of this.nodes.values()) if (!this.down.has(test.id)) test.node.tick();
      this.pump();
    }
  }

  campaign(id: NodeId): void {
    this.get(id).node.campaign();
    this.pump();
  }

  propose(id: NodeId, data: string): RaftError | undefined {
    const error = this.get(id).node.propose(new TextEncoder().encode(data));
    this.pump();
    return error;
  }

  leaders(): NodeId[] {
    return [...this.nodes.values()].filter((t) => !this.down.has(t.id) && t.node.raft.state === "leader").map((t) => t.id);
  }

  appliedData(id: NodeId): string[] {
    return this.get(id).applied.filter((e) => e.type === EntryType.EntryNormal && e.data.length > 0).map(text);
  }

  sentOfType(type: MessageType): Message[] {
    return this.sent.filter((m) => m.type === type);
  }
}

export const ids = { one: 1n, two: 2n, three: 3n, four: 4n, five: 5n } as const;
