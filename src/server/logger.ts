/**
 * Logs in the two shapes etcd 3.4 writes them. `zap`: JSON lines,
 * `{"level":"info","ts":"...","caller":"...","msg":"...", ...fields}`.
 * `capnslog` (etcd 3.4's default): text lines,
 * `2006-01-02 15:04:05.000000 I | embed: ready to serve client requests`.
 * A message etcd words differently in capnslog passes that text along;
 * other messages print their fields after the message.
 */
export type LogLevel = "debug" | "info" | "warn" | "error" | "panic" | "fatal";
export type LogFormat = "zap" | "capnslog";
const levelRank: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3, panic: 4, fatal: 5 };
const capnslogLetter: Record<LogLevel, string> = { debug: "D", info: "I", warn: "W", error: "E", panic: "C", fatal: "C" };

type Fields = Record<string, unknown> | undefined;

export interface Logger {
  debug(message: string, fields?: Fields, capnslogText?: string): void;
  info(message: string, fields?: Fields, capnslogText?: string): void;
  warn(message: string, fields?: Fields, capnslogText?: string): void;
  error(message: string, fields?: Fields, capnslogText?: string): void;
}

export function createLogger(level: LogLevel, caller: string, write: (line: string) => void = (line) => process.stderr.write(line), format: LogFormat = "zap"): Logger {
  const threshold = levelRank[level];
  const log = (entryLevel: LogLevel, message: string, fields: Fields, capnslogText: string | undefined): void => {
    if (levelRank[entryLevel] < threshold) return;
    if (format === "capnslog") {
      const text = capnslogText ?? `${caller}: ${message}${fields === undefined ? "" : ` ${toJson(fields)}`}`;
      write(capnslogLine(capnslogLetter[entryLevel], text));
      return;
    }
    write(toJson({ level: entryLevel, ts: new Date().toISOString(), caller, msg: message, ...fields }) + "\n");
  };
  return {
    debug: (message, fields, text) => log("debug", message, fields, text),
    info: (message, fields, text) => log("info", message, fields, text),
    warn: (message, fields, text) => log("warn", message, fields, text),
    error: (message, fields, text) => log("error", message, fields, text),
  };
}

/** One capnslog line, with the local time to the microsecond as Go prints it. */
export function capnslogLine(letter: string, text: string, now = new Date()): string {
  const two = (value: number): string => String(value).padStart(2, "0");
  const date = `${now.getFullYear()}-${two(now.getMonth() + 1)}-${two(now.getDate())}`;
  const time = `${two(now.getHours())}:${two(now.getMinutes())}:${two(now.getSeconds())}.${String(now.getMilliseconds()).padStart(3, "0")}000`;
  return `${date} ${time} ${letter} | ${text}\n`;
}

function toJson(value: unknown): string {
  return JSON.stringify(value, (_, item: unknown) => (typeof item === "bigint" ? item.toString(16) : item));
}

/** A logger that writes nothing, for tests and embedding. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
