/**
 * Structured JSON logs, one object a line, in the shape etcd's zap logger
 * writes: `{"level":"info","ts":"...","caller":"...","msg":"...", ...fields}`.
 */
export type LogLevel = "debug" | "info" | "warn" | "error" | "panic" | "fatal";
const levelRank: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3, panic: 4, fatal: 5 };

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export function createLogger(level: LogLevel, caller: string, write: (line: string) => void = (line) => process.stderr.write(line)): Logger {
  const threshold = levelRank[level];
  const log = (entryLevel: LogLevel, message: string, fields?: Record<string, unknown>): void => {
    if (levelRank[entryLevel] < threshold) return;
    const entry = { level: entryLevel, ts: new Date().toISOString(), caller, msg: message, ...fields };
    write(JSON.stringify(entry, (_, value: unknown) => (typeof value === "bigint" ? value.toString(16) : value)) + "\n");
  };
  return {
    debug: (message, fields) => log("debug", message, fields),
    info: (message, fields) => log("info", message, fields),
    warn: (message, fields) => log("warn", message, fields),
    error: (message, fields) => log("error", message, fields),
  };
}

/** A logger that writes nothing, for tests and embedding. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
