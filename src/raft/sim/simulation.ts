/**
 * The deterministic cluster simulator. One seed drives everything: cluster size,
 * network faults (loss, delay, duplication, reordering, symmetric and asymmetric
 * partitions), crashes that lose all that was not persisted, and a workload of
 * proposals, reads, membership changes, leadership transfers and compactions.
 * Safety is checked after every step (checker.ts); after the faults stop, a
 * leader must emerge and every new proposal must commit within a bound.
 */
import type { Message, NodeId } from "../messages.js";
import { MessageType, describeMessage } from "../messages.js";
import { SeededRandom } from "../random.js";
import { StateType } from "../raft.js";
import type { TestingFaults } from "../config.js";
import type { Ready } from "../raw-node.js";
import { contextKey } from "../read-only.js";
import { Checker, SafetyViolation } from "./checker.js";
import { SimNode } from "./sim-node.js";
import { proposeMembershipChange } from "./membership-changes.js";
import { SimulatedNetwork, quietNetwork } from "./network.js";
import type { NetworkFaults } from "./network.js";

/** Every bound of the simulation, in one place. */
export const simulationLimits = {
  electionTick: 10,
  faultTicksMin: 400,
  faultTicksMax: 1200,
  /** After healing, a leader must emerge within this many ticks. */
  leaderAfterHealTicks: 400,
  /** After a leader emerges, each proposal must commit within this many ticks. */
  commitAfterHealTicks: 300,
  /** Extra ticks allowed per entry of backlog at the time the leader emerges. */
  ticksPerBacklogEntry: 2,
  proposalsAfterHeal: 5,
  /** A proposal not committed after this many ticks is proposed again, as a client would retry. */
  retryProposalTicks: 30,
  /** After the last proposal commits, every member must apply it within this many ticks. */
  catchUpTicks: 200,
  maxDownNodes: 2,
} as const;

export interface SimulationOptions {
  seed: number;
  trace?: boolean;
  testingFaults?: TestingFaults;
}

export interface SimulationResult {
  seed: number;
  ok: boolean;
  failure?: string;
  ticks: number;
  nodeCount: number;
  stats: Record<string, number>;
  trace: string[];
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

class LivenessViolation extends Error {}

export class Simulation {
  private readonly random: SeededRandom;
  private readonly network: SimulatedNetwork;
  readonly nodes = new Map<NodeId, SimNode>();
  readonly checker = new Checker();
  private now = 0;
  private counter = 0;
  private readonly reads = new Map<string, number>();
  private readonly leaderSeen = new Map<NodeId, number>();
  private readonly commitChecked = new Map<NodeId, number>();
  private readonly appliedData = new Set<string>();
  readonly stats: Record<string, number> = {
    proposals: 0, applied: 0, reads: 0, readsServed: 0, crashes: 0, restarts: 0, partitions: 0,
    confChanges: 0, jointChanges: 0, transfers: 0, compactions: 0, messages: 0,
  };
  readonly traceLines: string[] = [];
  private readonly nodeCount: number;
  private networkFaults: NetworkFaults;
  private readonly crashProbability: number;
  private readonly leaderCrashProbability: number;
  private readonly isolateLeaderProbability: number;

  constructor(private readonly options: SimulationOptions) {
    this.random = new SeededRandom(options.seed);
    this.network = new SimulatedNetwork(this.random.fork());
    this.nodeCount = 3 + this.random.nextInt(3);
    const spare = this.nodeCount > 3 ? this.random.nextInt(2) : 0;
    this.networkFaults = {
      lossProbability: [0, 0.02, 0.1, 0.2][this.random.nextInt(4)]!,
      duplicateProbability: [0, 0.02, 0.05][this.random.nextInt(3)]!,
      minDelayTicks: 1,
      maxDelayTicks: [2, 4, 8][this.random.nextInt(3)]!,
    };
    this.crashProbability = [0.002, 0.005, 0.02][this.random.nextInt(3)]!;
    this.leaderCrashProbability = [0, 0.01, 0.04][this.random.nextInt(3)]!;
    this.isolateLeaderProbability = [0, 0.01, 0.04][this.random.nextInt(3)]!;
    const maxSizePerMessageBytes = [1, 64, 256, 4096][this.random.nextInt(4)]!;
    const nodeOptions = {
      electionTick: simulationLimits.electionTick,
      heartbeatTick: 1 + this.random.nextInt(2),
      maxSizePerMessageBytes,
      maxInflightMessages: [2, 16, 256][this.random.nextInt(3)]!,
      maxInflightBytes: this.random.chance(0.3) ? Math.max(maxSizePerMessageBytes, 256) : 0,
      maxUncommittedEntriesSizeBytes: this.random.chance(0.3) ? 200 : 0,
      preVote: this.random.chance(0.75),
      checkQuorum: this.random.chance(0.75),
      testingFaults: options.testingFaults ?? {},
      logger: options.trace === true ? (line: string) => this.trace(line) : undefined,
    };
    const ids: NodeId[] = [];
    for (let i = 1; i <= this.nodeCount; i++) ids.push(BigInt(i));
    const voters = ids.slice(0, this.nodeCount - spare);
    this.trace(
      `seed ${options.seed}: ${this.nodeCount} nodes, voters ${voters.join(",")}, network ${JSON.stringify(this.networkFaults)}, ` +
        `crash ${this.crashProbability}, leader crash ${this.leaderCrashProbability}, leader isolation ${this.isolateLeaderProbability}, ` +
        `options ${JSON.stringify({ ...nodeOptions, logger: undefined })}`,
    );
    for (const id of ids) {
      const node = new SimNode(id, this.random.fork(), nodeOptions);
      this.nodes.set(id, node);
      node.start(voters.includes(id) ? voters : undefined, this.checker);
    }
  }

  trace(line: string): void {
    if (this.options.trace === true) this.traceLines.push(`[${String(this.now).padStart(5)}] ${line}`);
  }

  run(): SimulationResult {
    const faultTicks = simulationLimits.faultTicksMin + this.random.nextInt(simulationLimits.faultTicksMax - simulationLimits.faultTicksMin);
    try {
      this.network.faults = this.networkFaults;
      while (this.now < faultTicks) {
        this.injectFaults();
        this.workload();
        this.step();
      }
      this.heal();
      this.checkLiveness();
      return this.result(true);
    } catch (error) {
      if (error instanceof SafetyViolation || error instanceof LivenessViolation) return this.result(false, error.message);
      return this.result(false, `crash: ${(error as Error).stack ?? String(error)}`);
    }
  }

  private result(ok: boolean, failure?: string): SimulationResult {
    if (failure !== undefined) this.trace(`FAILED: ${failure}`);
    return { seed: this.options.seed, ok, failure, ticks: this.now, nodeCount: this.nodeCount, stats: { ...this.stats, checks: this.checker.checks }, trace: this.traceLines };
  }

  // ---- one tick of simulated time ----

  private step(): void {
    this.now++;
    for (const { message, blocked } of this.network.deliverable(this.now)) {
      const node = this.nodes.get(message.to);
      const delivered = !blocked && node?.alive === true;
      if (message.type === MessageType.MsgSnap) this.reportSnapshot(message, delivered);
      if (!delivered) continue;
      this.stats.messages!++;
      if (this.options.trace === true) this.trace(`deliver ${describeMessage(message)}`);
      node!.deliver(message);
    }
    for (const node of this.nodes.values()) node.node?.tick();
    for (const node of this.nodes.values()) this.processReady(node);
    this.checkSafety();
  }

  private send(messages: Message[]): void {
    for (const message of messages) {
      const queued = this.network.send(message, this.now);
      if (!queued && message.type === MessageType.MsgSnap) this.reportSnapshot(message, false);
    }
  }

  /** The transport tells the leader how a snapshot transfer ended, as etcd's does. */
  private reportSnapshot(message: Message, delivered: boolean): void {
    const sender = this.nodes.get(message.from)?.node;
    if (sender === undefined) return;
    this.trace(`report snapshot to ${message.to} ${delivered ? "finished" : "failed"} to ${message.from}`);
    sender.reportSnapshot(message.to, delivered ? "finish" : "failure");
  }

  private processReady(sim: SimNode): void {
    if (sim.pending !== undefined && this.now >= sim.pending.persistAt) this.completeReady(sim, sim.pending.ready);
    const node = sim.node;
    if (node === undefined || sim.pending !== undefined || !node.hasReady()) return;
    const ready = node.ready();
    for (const state of ready.readStates) this.observeRead(sim.id, state.index, state.requestContext);
    // The leader's appends and other early messages go out while the write is in progress.
    this.send(ready.messages);
    const persistDelay = this.random.chance(0.3) ? 1 + this.random.nextInt(2) : 0;
    if (persistDelay === 0) this.completeReady(sim, ready);
    else sim.pending = { ready, persistAt: this.now + persistDelay };
  }

  private completeReady(sim: SimNode, ready: Ready): void {
    sim.pending = undefined;
    sim.persist(ready, this.checker);
    this.send(ready.messagesAfterPersist);
    for (const record of sim.apply(ready, this.checker)) {
      const key = decoder.decode(record.data);
      if (!this.appliedData.has(key)) {
        this.appliedData.add(key);
        this.stats.applied!++;
      }
    }
    sim.node!.advance();
  }

  private observeRead(node: NodeId, index: number, context: Uint8Array): void {
    const key = contextKey(context);
    const committedAtStart = this.reads.get(key);
    if (committedAtStart === undefined) return;
    this.reads.delete(key);
    this.stats.readsServed!++;
    this.trace(`node ${node} read index ${index} (committed at start ${committedAtStart})`);
    this.checker.checkRead(node, index, committedAtStart);
  }

  private checkSafety(): void {
    for (const sim of this.nodes.values()) {
      const raft = sim.node?.raft;
      if (raft === undefined) continue;
      this.checker.observeCommitted(raft.log.committed);
      if (raft.state !== StateType.Leader) continue;
      this.checker.observeLeader(raft.term, sim.id);
      if (raft.log.committed > (this.commitChecked.get(sim.id) ?? 0)) {
        this.commitChecked.set(sim.id, raft.log.committed);
        const logs = new Map([...this.nodes].map(([id, node]) => [id, node.durableLog()]));
        const config = { incoming: [...raft.tracker.config.voters.incoming], outgoing: [...raft.tracker.config.voters.outgoing] };
        this.checker.checkCommitDurable(sim.id, raft.log.committed, raft.log.term(raft.log.committed), config, logs);
      }
      if (this.leaderSeen.get(sim.id) !== raft.term) {
        this.leaderSeen.set(sim.id, raft.term);
        this.checker.checkLeaderCompleteness(sim.id, raft.term, raft.log);
      }
    }
  }

  // ---- faults and workload ----

  private randomNode(filter: (node: SimNode) => boolean): SimNode | undefined {
    const candidates = [...this.nodes.values()].filter(filter);
    return candidates.length === 0 ? undefined : candidates[this.random.nextInt(candidates.length)];
  }

  private leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const sim of this.nodes.values()) {
      const raft = sim.node?.raft;
      if (raft?.state === StateType.Leader && (best === undefined || raft.term > best.node!.raft.term)) best = sim;
    }
    return best;
  }

  private injectFaults(): void {
    const down = [...this.nodes.values()].filter((n) => !n.alive).length;
    if (this.random.chance(this.crashProbability) && down < simulationLimits.maxDownNodes) {
      const victim = this.randomNode((n) => n.alive);
      if (victim !== undefined) {
        this.trace(`crash node ${victim.id}${victim.pending !== undefined ? " (losing an unpersisted Ready)" : ""}`);
        victim.crash();
        this.stats.crashes!++;
      }
    }
    if (this.random.chance(this.leaderCrashProbability) && down < simulationLimits.maxDownNodes) {
      // Crashing fresh leaders is what produces the paper's Figure 8 histories.
      const leader = this.leader();
      if (leader !== undefined) {
        this.trace(`crash leader ${leader.id}${leader.pending !== undefined ? " (losing an unpersisted Ready)" : ""}`);
        leader.crash();
        this.stats.crashes!++;
      }
    }
    if (down > 0 && this.random.chance(0.03)) {
      const revived = this.randomNode((n) => !n.alive)!;
      this.trace(`restart node ${revived.id}`);
      revived.restart();
      this.stats.restarts!++;
    }
    if (this.random.chance(0.008)) this.partition();
    if (this.random.chance(this.isolateLeaderProbability)) {
      // Cut off the leader right after it appended entries it could not replicate yet.
      const leader = this.leader();
      if (leader !== undefined) {
        for (const other of this.nodes.keys()) {
          if (other === leader.id) continue;
          this.network.block(leader.id, other);
          this.network.block(other, leader.id);
        }
        this.stats.partitions!++;
        this.trace(`isolate leader ${leader.id}`);
      }
    }
    if (this.random.chance(0.01)) {
      this.trace("heal network partitions");
      this.network.heal();
    }
  }

  private partition(): void {
    const ids = [...this.nodes.keys()];
    this.stats.partitions!++;
    if (this.random.chance(0.5)) {
      const side = ids.filter(() => this.random.chance(0.5));
      for (const a of side) for (const b of ids) if (!side.includes(b)) {
        this.network.block(a, b);
        this.network.block(b, a);
      }
      this.trace(`partition {${side.join(",")}} from the rest`);
    } else {
      const links = 1 + this.random.nextInt(3);
      for (let i = 0; i < links; i++) {
        const from = ids[this.random.nextInt(ids.length)]!;
        const to = ids[this.random.nextInt(ids.length)]!;
        if (from !== to) this.network.block(from, to);
      }
      this.trace(`asymmetric partition: blocked ${this.network.blockedLinks().join(" ")}`);
    }
  }

  private workload(): void {
    if (this.random.chance(0.25)) this.propose(this.randomNode((n) => n.alive));
    if (this.random.chance(0.08)) this.read();
    if (this.random.chance(0.01)) this.changeMembership();
    if (this.random.chance(0.004)) this.transferLeadership();
    if (this.random.chance(0.02)) {
      const sim = this.randomNode((n) => n.alive);
      if (sim !== undefined && sim.compact(this.random.nextInt(8))) {
        this.stats.compactions!++;
        this.trace(`node ${sim.id} compacted its log up to ${sim.storage.firstIndex() - 1}`);
      }
    }
  }

  private propose(sim: SimNode | undefined): void {
    this.proposeData(sim, `p${this.counter++}`);
  }

  private proposeData(sim: SimNode | undefined, data: string): boolean {
    if (sim?.node === undefined) return false;
    const error = sim.node.propose(encoder.encode(data));
    this.stats.proposals!++;
    this.trace(`propose ${data} at node ${sim.id}${error === undefined ? "" : `: ${error.code}`}`);
    return error === undefined;
  }

  private read(): void {
    const sim = this.randomNode((n) => n.alive);
    if (sim?.node === undefined) return;
    const context = encoder.encode(`r${this.counter++}`);
    this.reads.set(contextKey(context), this.checker.maxCommitted);
    this.stats.reads!++;
    const error = sim.node.readIndex(context);
    this.trace(`read at node ${sim.id} (committed ${this.checker.maxCommitted})${error === undefined ? "" : `: ${error.code}`}`);
  }

  private changeMembership(): void {
    const leader = this.leader();
    if (leader === undefined) return;
    const kind = proposeMembershipChange(leader, [...this.nodes.keys()], this.random, (line) => this.trace(line));
    if (kind === "simple" || kind === "joint") this.stats.confChanges!++;
    if (kind === "joint") this.stats.jointChanges!++;
  }

  private transferLeadership(): void {
    const leader = this.leader();
    if (leader === undefined) return;
    const voters = leader.node!.raft.tracker.confState().voters.filter((id) => id !== leader.id);
    if (voters.length === 0) return;
    const target = voters[this.random.nextInt(voters.length)]!;
    this.stats.transfers!++;
    this.trace(`transfer leadership from ${leader.id} to ${target}`);
    leader.node!.transferLeader(target);
  }

  // ---- healing and liveness ----

  private heal(): void {
    this.trace("faults stop: heal the network, restart every node");
    this.network.heal();
    this.network.faults = quietNetwork;
    for (const sim of this.nodes.values()) {
      if (!sim.alive) {
        sim.restart();
        this.stats.restarts!++;
      }
    }
  }

  private runUntil(deadlineTicks: number, done: () => boolean, what: string): void {
    const deadline = this.now + deadlineTicks;
    while (!done()) {
      if (this.now >= deadline) throw new LivenessViolation(`liveness: ${what} within ${deadlineTicks} ticks after healing`);
      this.step();
    }
  }

  private checkLiveness(): void {
    // A leader has emerged once it has committed an entry of its own term.
    this.runUntil(simulationLimits.leaderAfterHealTicks, () => this.leader()?.node!.raft.committedEntryInCurrentTerm() === true, "no leader emerged");
    // The bound grows with the backlog the leader must replicate first (one entry per message at worst).
    const backlog = this.leader()!.node!.raft.log.lastIndex() - Math.min(...[...this.nodes.values()].map((n) => n.appliedIndex));
    const commitBoundTicks = simulationLimits.commitAfterHealTicks + simulationLimits.ticksPerBacklogEntry * backlog;
    for (let i = 0; i < simulationLimits.proposalsAfterHeal; i++) {
      const data = `h${i}`;
      let proposedAt = -Infinity;
      this.runUntil(commitBoundTicks, () => {
        if (this.appliedData.has(data)) return true;
        // Like a client, retry through the current leader when an attempt did not commit in time.
        if (this.now - proposedAt >= simulationLimits.retryProposalTicks && this.proposeData(this.leader(), data)) proposedAt = this.now;
        return false;
      }, `proposal ${data} did not commit`);
    }
    this.runUntil(simulationLimits.leaderAfterHealTicks, () => this.leader() !== undefined, "no leader after the proposals");
    const leader = this.leader()!;
    const target = leader.node!.raft.log.committed;
    const conf = leader.node!.raft.tracker.confState();
    const members = [...conf.voters, ...conf.learners].map((id) => this.nodes.get(id)!);
    this.runUntil(simulationLimits.catchUpTicks, () => members.every((m) => m.appliedIndex >= target), `members did not apply index ${target}`);
  }
}

export function runSeed(options: SimulationOptions): SimulationResult {
  return new Simulation(options).run();
}
