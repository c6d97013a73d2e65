/**
 * Configuration of one raft node, and every limit the core enforces, named in
 * one place with its default.
 */
import type { NodeId } from "./messages.js";
import { None } from "./messages.js";
import type { Storage } from "./storage.js";
import type { RandomSource } from "./random.js";
import { assert } from "./errors.js";

export const ReadOnlyOption = {
  /** A heartbeat round to a quorum confirms leadership before a read is served. */
  Safe: "safe",
  /** Serve reads on the leader's lease (needs check-quorum; unsafe under clock drift). */
  LeaseBased: "lease-based",
} as const;
export type ReadOnlyOption = (typeof ReadOnlyOption)[keyof typeof ReadOnlyOption];

/** Defaults for every limit; all are overridable through Config. */
export const limits = {
  electionTickDefault: 10,
  heartbeatTickDefault: 1,
  /** Largest MsgApp payload; one entry is always sent even if larger. */
  maxSizePerMessageBytesDefault: 1024 * 1024,
  /** Largest batch of committed entries handed out in one Ready. */
  maxCommittedSizePerReadyBytesDefault: 64 * 1024 * 1024,
  /** Uncommitted payload bytes a leader accepts before dropping proposals (0 = no limit). */
  maxUncommittedEntriesSizeBytesDefault: 0,
  /** MsgApp messages in flight to one follower in replicate state. */
  maxInflightMessagesDefault: 256,
  /** Payload bytes in flight to one follower (0 = no limit). */
  maxInflightBytesDefault: 0,
  /** Read requests waiting for a heartbeat quorum or for a commit in the leader's term. */
  maxPendingReadIndexMessages: 4096,
} as const;

/** Test-only fault hooks: each breaks one safety rule so that the simulator's checkers can be shown to catch it. */
export interface TestingFaults {
  /** Commit by counting replicas of entries of earlier terms (Figure 8's mistake). */
  commitEntriesOfEarlierTerms?: boolean;
  /** Grant a vote to any candidate, even after voting for another in the same term. */
  grantMultipleVotesPerTerm?: boolean;
  /** Ignore the candidate's log when granting a vote (breaks leader completeness). */
  ignoreLogWhenVoting?: boolean;
}

export interface Config {
  id: NodeId;
  storage: Storage;
  /** Election timeout in ticks; the randomized timeout is in [electionTick, 2 * electionTick). */
  electionTick?: number;
  heartbeatTick?: number;
  /** Last applied index, when restarting; entries up to it are not handed out again. */
  applied?: number;
  maxSizePerMessageBytes?: number;
  maxCommittedSizePerReadyBytes?: number;
  maxUncommittedEntriesSizeBytes?: number;
  maxInflightMessages?: number;
  maxInflightBytes?: number;
  checkQuorum?: boolean;
  preVote?: boolean;
  readOnlyOption?: ReadOnlyOption;
  disableProposalForwarding?: boolean;
  /** Seeded randomness for election timeouts. */
  random: RandomSource;
  /** Optional trace sink for state changes. */
  logger?: (line: string) => void;
  testingFaults?: TestingFaults;
}

export type ResolvedConfig = Required<Omit<Config, "logger" | "testingFaults">> &
  Pick<Config, "logger"> & { testingFaults: TestingFaults };

export function resolveConfig(config: Config): ResolvedConfig {
  const resolved: ResolvedConfig = {
    electionTick: limits.electionTickDefault,
    heartbeatTick: limits.heartbeatTickDefault,
    applied: 0,
    maxSizePerMessageBytes: limits.maxSizePerMessageBytesDefault,
    maxCommittedSizePerReadyBytes: limits.maxCommittedSizePerReadyBytesDefault,
    maxUncommittedEntriesSizeBytes: limits.maxUncommittedEntriesSizeBytesDefault,
    maxInflightMessages: limits.maxInflightMessagesDefault,
    maxInflightBytes: limits.maxInflightBytesDefault,
    checkQuorum: true,
    preVote: true,
    readOnlyOption: ReadOnlyOption.Safe,
    disableProposalForwarding: false,
    ...stripUndefined(config),
    testingFaults: config.testingFaults ?? {},
  };
  validate(resolved);
  return resolved;
}

function stripUndefined(config: Config): Config {
  const copy: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) if (value !== undefined) copy[key] = value;
  return copy as unknown as Config;
}

function validate(config: ResolvedConfig): void {
  assert(config.id !== None, "config: cannot use none as id");
  assert(config.heartbeatTick > 0, "config: heartbeat tick must be greater than 0");
  assert(config.electionTick > config.heartbeatTick, "config: election tick must be greater than heartbeat tick");
  assert(config.maxInflightMessages > 0, "config: max inflight messages must be greater than 0");
  assert(config.maxSizePerMessageBytes > 0, "config: max size per message must be greater than 0");
  assert(
    config.maxInflightBytes === 0 || config.maxInflightBytes >= config.maxSizePerMessageBytes,
    "config: max inflight bytes must be at least max size per message",
  );
  assert(
    config.readOnlyOption !== ReadOnlyOption.LeaseBased || config.checkQuorum,
    "config: lease-based reads require check-quorum",
  );
}
