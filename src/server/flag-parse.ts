import { flagsByName, type FlagSpec } from "./flags.js";
import { parseGoBool, parseGoDurationMs, parseGoInteger } from "./go-values.js";

/** A flag's name → its value as written, from the command line, the environment or a config file. */
export type FlagValues = Map<string, string>;

/**
 * A refused start. `exitCode` is etcd's: 2 for what Go's flag package
 * refuses while parsing the command line, 1 for what etcd refuses after.
 */
export class ConfigError extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2 = 1,
  ) {
    super(message);
    this.name = "ConfigError";
  }
}

/** `-h`, `-help` or `--help` was given: print the usage and exit 0, as Go's flag package does. */
export class HelpRequested extends Error {}

/** What reading the environment has to say, as etcd's pkg/flags says it (`I` for info, `W` for warning). */
export interface FlagNotice {
  level: "I" | "W";
  text: string;
}

/**
 * The command line as Go's flag package parses it: `-name` and `--name`,
 * with `=value` or the next argument as the value (never for a boolean),
 * up to the first argument that is not a flag or a lone `--`. What is left
 * over is refused as etcd refuses it.
 */
export function parseArgs(argv: readonly string[]): FlagValues {
  const values: FlagValues = new Map();
  let position = 0;
  for (; position < argv.length; position++) {
    const argument = argv[position]!;
    if (argument.length < 2 || argument[0] !== "-") break;
    const dashes = argument[1] === "-" ? 2 : 1;
    if (dashes === 2 && argument.length === 2) {
      position++;
      break;
    }
    const body = argument.slice(dashes);
    if (body.length === 0 || body[0] === "-" || body[0] === "=") throw new ConfigError(`bad flag syntax: ${argument}`, 2);
    const equals = body.indexOf("=");
    const name = equals === -1 ? body : body.slice(0, equals);
    if (name === "h" || name === "help") throw new HelpRequested();
    const spec = flagsByName.get(name);
    if (spec === undefined) throw new ConfigError(`flag provided but not defined: -${name}`, 2);
    let value = equals === -1 ? undefined : body.slice(equals + 1);
    if (value === undefined) {
      if (spec.kind === "bool") value = "true";
      else {
        if (position + 1 >= argv.length) throw new ConfigError(`flag needs an argument: -${name}`, 2);
        value = argv[++position]!;
      }
    }
    checkValue(spec, value, `flag -${name}`, 2);
    values.set(name, value);
  }
  if (position < argv.length) throw new ConfigError(`'${argv[position]}' is not a valid flag`);
  return values;
}

/** `--snapshot-count` is read from `ETCD_SNAPSHOT_COUNT`. */
export function environmentName(flagName: string): string {
  return `ETCD_${flagName.toUpperCase().replaceAll("-", "_")}`;
}

/**
 * Adds the `ETCD_*` variables to the command line's flags as etcd 3.4's
 * pkg/flags does: a variable sets its flag unless the flag is on the command
 * line, where the variable conflicts with it and the start is refused; an
 * empty variable sets nothing; a variable that names no flag is only
 * warned about. Every other variable is left alone.
 */
export function mergeEnvironment(fromArgs: FlagValues, environment: NodeJS.ProcessEnv, notices: FlagNotice[]): FlagValues {
  const values: FlagValues = new Map(fromArgs);
  const used = new Set<string>();
  const givenAsFlag = new Set([...fromArgs.keys()].map(environmentName));
  for (const spec of [...flagsByName.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const key = environmentName(spec.name);
    const value = environment[key];
    if (givenAsFlag.has(key) || value === undefined || value === "") continue;
    used.add(key);
    checkValue(spec, value, key, 1);
    values.set(spec.name, value);
    notices.push({ level: "I", text: `recognized and used environment variable ${key}=${value}` });
  }
  for (const [key, value] of Object.entries(environment)) {
    if (used.has(key)) continue;
    if (givenAsFlag.has(key)) {
      throw new ConfigError(`conflicting environment variable "${key}" is shadowed by corresponding command-line flag (either unset environment variable or disable flag)`);
    }
    if (key.startsWith("ETCD_")) notices.push({ level: "W", text: `unrecognized environment variable ${key}=${value ?? ""}` });
  }
  return values;
}

/** Refuses a value that etcd's flag of this kind would not parse, in Go's words. */
export function checkValue(spec: FlagSpec, value: string, source: string, exitCode: 1 | 2): void {
  const problem = valueProblem(spec, value);
  if (problem === undefined) return;
  if (spec.kind === "bool" && exitCode === 2) throw new ConfigError(`invalid boolean value "${value}" for -${spec.name}: ${problem}`, 2);
  throw new ConfigError(`invalid value "${value}" for ${source}: ${problem}`, exitCode);
}

function valueProblem(spec: FlagSpec, value: string): string | undefined {
  switch (spec.kind) {
    case "bool":
      return parseGoBool(value) === undefined ? "parse error" : undefined;
    case "int":
    case "uint": {
      const parsed = parseGoInteger(value, spec.kind === "int");
      return typeof parsed === "bigint" ? undefined : parsed;
    }
    case "uint32": {
      const parsed = parseGoInteger(value, false);
      const problem = typeof parsed === "bigint" ? (parsed > 0xffff_ffffn ? "value out of range" : undefined) : parsed === "parse error" ? "invalid syntax" : parsed;
      return problem === undefined ? undefined : `strconv.ParseUint: parsing "${value}": ${problem}`;
    }
    case "duration":
      try {
        parseGoDurationMs(value);
        return undefined;
      } catch {
        return "parse error";
      }
    case "choice":
      return spec.choices!.includes(value) ? undefined : "invalid value";
    case "urls":
      return spec.name === "cors" ? urlsProblem(value, ["*"]) : value === "" ? undefined : urlsProblem(value, []);
    case "string":
      return undefined;
  }
}

/**
 * What etcd's URL list flags say of a value: each comma-separated item must
 * parse, have a known scheme and a host:port, and no path (`exceptions`,
 * such as `*` for --cors, are taken as they are). Only --cors refuses an
 * empty value.
 */
function urlsProblem(text: string, exceptions: readonly string[]): string | undefined {
  for (const raw of text.split(",")) {
    const item = raw.trim();
    if (exceptions.includes(item)) continue;
    const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(item)?.[1];
    if (scheme === undefined && item.split("/")[0]!.includes(":")) return `parse "${item}": first path segment in URL cannot contain colon`;
    if (!["http", "https", "unix", "unixs"].includes(scheme ?? "")) return `URL scheme must be http, https, unix, or unixs: ${item}`;
    const rest = item.slice(scheme!.length + 1);
    const authorityMatch = /^\/\/([^/?#]*)/.exec(rest);
    const authority = authorityMatch === null ? "" : authorityMatch[1]!.split("@").pop()!;
    if (!/^(\[[^\]]*\]|[^:[\]]*):[^:]*$/.test(authority)) return `URL address does not have the form "host:port": ${item}`;
    const path = rest.slice(authorityMatch?.[0].length ?? 0).replace(/[?#].*$/s, "");
    if (path !== "") return `URL must not contain a path: ${item}`;
  }
  return undefined;
}
