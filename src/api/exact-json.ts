/**
 * JSON.parse without losing 64-bit integers: an integer literal beyond 2^53
 * (a lease or member id sent as a JSON number, as some clients do) is read as
 * the string of its digits, which proto3 JSON takes for 64-bit fields; read
 * as a double it would silently become another id. Smaller numbers, and
 * everything inside strings, are left as JSON.parse reads them.
 */
export function parseJsonExactly(text: string): unknown {
  return JSON.parse(quoteWideIntegers(text));
}

/** The text with every integer literal outside strings that a double cannot hold exactly put in quotes. */
export function quoteWideIntegers(text: string): string {
  let result: string[] | undefined;
  let copiedUpTo = 0;
  let position = 0;
  while (position < text.length) {
    const character = text[position]!;
    if (character === '"') {
      position = endOfString(text, position);
      continue;
    }
    if (character !== "-" && (character < "0" || character > "9")) {
      position++;
      continue;
    }
    const literal = /^-?[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?/.exec(text.slice(position, position + 400))?.[0] ?? character;
    if (/^-?[0-9]+$/.test(literal) && !Number.isSafeInteger(Number(literal))) {
      result ??= [];
      result.push(text.slice(copiedUpTo, position), `"${literal}"`);
      copiedUpTo = position + literal.length;
    }
    position += literal.length;
  }
  if (result === undefined) return text;
  result.push(text.slice(copiedUpTo));
  return result.join("");
}

/** The position after the string literal that starts at `start` (or the end of the text, for JSON.parse to refuse). */
function endOfString(text: string, start: number): number {
  for (let position = start + 1; position < text.length; position++) {
    if (text[position] === "\\") position++;
    else if (text[position] === '"') return position + 1;
  }
  return text.length;
}
