/** Go's syntax for the values of etcd's flags: booleans, integers and durations as Go parses them. */

const goTrue = new Set(["1", "t", "T", "TRUE", "true", "True"]);
const goFalse = new Set(["0", "f", "F", "FALSE", "false", "False"]);

/** Go's strconv.ParseBool. */
export function parseGoBool(text: string): boolean | undefined {
  if (goTrue.has(text)) return true;
  if (goFalse.has(text)) return false;
  return undefined;
}

const int64Min = -(2n ** 63n);
const int64Max = 2n ** 63n - 1n;
const uint64Max = 2n ** 64n - 1n;

/**
 * Go's strconv.ParseInt / ParseUint with base 0, as its flag package calls
 * them: an optional sign (signed only), a `0x`, `0o`, `0b` or `0` prefix,
 * underscores between digits; 64-bit range.
 */
export function parseGoInteger(text: string, signed: boolean): bigint | "parse error" | "value out of range" {
  let rest = text;
  let negative = false;
  if (signed && (rest.startsWith("-") || rest.startsWith("+"))) {
    negative = rest[0] === "-";
    rest = rest.slice(1);
  }
  if (!underscoresInPlace(rest)) return "parse error";
  let base = 10;
  let digits = rest;
  const prefix = rest.slice(0, 2).toLowerCase();
  if (prefix === "0x" || prefix === "0o" || prefix === "0b") {
    base = prefix === "0x" ? 16 : prefix === "0o" ? 8 : 2;
    digits = rest.slice(2);
  } else if (rest.length > 1 && rest[0] === "0") {
    base = 8;
    digits = rest.slice(1);
  }
  digits = digits.replaceAll("_", "");
  const alphabet = "0123456789abcdef".slice(0, base);
  if (digits.length === 0 || [...digits.toLowerCase()].some((digit) => !alphabet.includes(digit))) return "parse error";
  let magnitude = 0n;
  for (const digit of digits.toLowerCase()) magnitude = magnitude * BigInt(base) + BigInt(alphabet.indexOf(digit));
  const value = negative ? -magnitude : magnitude;
  if (signed ? value < int64Min || value > int64Max : value > uint64Max) return "value out of range";
  return value;
}

/** Go's rule for underscores in a base-0 literal: only between digits, or between the base prefix and a digit. */
function underscoresInPlace(text: string): boolean {
  let last: "start" | "digit" | "underscore" | "other" = "start";
  let position = 0;
  const hex = /^0[xX]/.test(text);
  if (/^0[xXoObB]/.test(text)) {
    position = 2;
    last = "digit";
  }
  for (; position < text.length; position++) {
    const character = text[position]!;
    if (/[0-9]/.test(character) || (hex && /[a-fA-F]/.test(character))) {
      last = "digit";
    } else if (character === "_") {
      if (last !== "digit") return false;
      last = "underscore";
    } else {
      if (last === "underscore") return false;
      last = "other";
    }
  }
  return last !== "underscore";
}

const durationUnitMs: Record<string, number> = { ns: 1e-6, us: 1e-3, "\u00b5s": 1e-3, "\u03bcs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Go's time.ParseDuration, in milliseconds: an optional sign, then one or
 * more decimal numbers each with a unit ("300ms", "-1.5h", "2h45m", ".5s");
 * "0" needs no unit.
 */
export function parseGoDurationMs(text: string): number {
  let rest = text;
  let sign = 1;
  if (rest.startsWith("-") || rest.startsWith("+")) {
    sign = rest[0] === "-" ? -1 : 1;
    rest = rest.slice(1);
  }
  if (rest === "0") return 0;
  if (rest === "") throw new Error(`invalid duration "${text}"`);
  let total = 0;
  while (rest.length > 0) {
    const match = /^([0-9]*)(?:\.([0-9]*))?([^0-9.]*)/.exec(rest)!;
    const [whole, integer = "", fraction] = match;
    const unit = match[3]!;
    if (integer === "" && (fraction === undefined || fraction === "")) throw new Error(`invalid duration "${text}"`);
    const unitMs = durationUnitMs[unit];
    if (unitMs === undefined) throw new Error(`${unit === "" ? "missing" : "unknown"} unit in duration "${text}"`);
    total += Number(`${integer || "0"}.${fraction ?? ""}0`) * unitMs;
    rest = rest.slice(whole.length);
  }
  return sign * total;
}
