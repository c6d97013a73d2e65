/** The raft consensus core: a pure, deterministic state machine driven through RawNode. */
export * from "./messages.js";
export * from "./errors.js";
export * from "./config.js";
export * from "./random.js";
export * from "./storage.js";
export * from "./codec.js";
export type { ReadState } from "./read-only.js";
export { RawNode } from "./raw-node.js";
export type { Ready, SoftState, Status, ProgressStatus, SnapshotStatus } from "./raw-node.js";
export { StateType } from "./raft.js";
export { ProgressState } from "./progress.js";
