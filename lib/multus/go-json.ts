// A strict JSON reader that keeps what JSON.parse throws away: the order of an object's
// entries, duplicates included. Go's encoding/json (which Multus decodes annotations with)
// assigns duplicate and case-variant keys in source order, so the last one wins; matching that
// needs every entry as written. Strings are decoded as Go's `unquote` (encoding/json/decode.go)
// does: escapes first, then an unpaired UTF-16 surrogate becomes U+FFFD.

export type GoJsonValue =
  | { kind: "object"; entries: GoJsonEntry[] }
  | { kind: "array"; items: GoJsonValue[] }
  | { kind: "string"; value: string }
  /** The literal as written: Go decides per target type whether it fits (int, float64). */
  | { kind: "number"; literal: string }
  | { kind: "boolean"; value: boolean }
  | { kind: "null" };

export interface GoJsonEntry {
  key: string;
  value: GoJsonValue;
}

export class GoJsonSyntaxError extends Error {}

/** Go's scanner refuses deeper nesting (encoding/json/scanner.go maxNestingDepth). */
export const GO_MAX_NESTING_DEPTH = 10000;

const REPLACEMENT_CHARACTER = "\uFFFD";
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const SIMPLE_ESCAPES: Record<string, string> = {
  '"': '"',
  "\\": "\\",
  "/": "/",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
};

/** `'x'` for printable ASCII, else `U+00A0`. */
function describeCharacter(codePoint: number): string {
  if (codePoint > 0x20 && codePoint < 0x7f) return `'${String.fromCodePoint(codePoint)}'`;
  return `U+${codePoint.toString(16).toUpperCase().padStart(4, "0")}`;
}

const isHighSurrogate = (unit: number) => unit >= 0xd800 && unit <= 0xdbff;
const isLowSurrogate = (unit: number) => unit >= 0xdc00 && unit <= 0xdfff;

/** Parses one JSON document (whitespace around it allowed, nothing else), like json.Unmarshal. */
export function parseGoJson(text: string): GoJsonValue {
  return new GoJsonReader(text).readDocument();
}

type ArrayValue = Extract<GoJsonValue, { kind: "array" }>;
type ObjectValue = Extract<GoJsonValue, { kind: "object" }>;
/** A container still being read; for an object, the key of the value being read. */
type OpenContainer = { container: ArrayValue } | { container: ObjectValue; key: string };

/**
 * Reads without recursion, so that nesting as deep as Go allows cannot overflow the stack and
 * turn a document Multus accepts into one we could not read.
 */
class GoJsonReader {
  private position = 0;

  constructor(private readonly text: string) {}

  readDocument(): GoJsonValue {
    const value = this.readValue();
    this.skipWhitespace();
    if (this.position < this.text.length) this.fail("after top-level value");
    return value;
  }

  private fail(where: string): never {
    const found = this.text.codePointAt(this.position);
    const what =
      found === undefined
        ? "unexpected end of JSON input"
        : `invalid character ${describeCharacter(found)}`;
    throw new GoJsonSyntaxError(`${what} ${where} (offset ${this.position})`);
  }

  private skipWhitespace() {
    while (" \t\n\r".includes(this.text[this.position] ?? "x")) this.position++;
  }

  private readValue(): GoJsonValue {
    const open: OpenContainer[] = [];
    for (;;) {
      let complete = this.readValueStart(open);
      while (complete !== undefined) {
        const parent = open.at(-1);
        if (!parent) return complete;
        if ("key" in parent) parent.container.entries.push({ key: parent.key, value: complete });
        else parent.container.items.push(complete);
        complete = this.readAfterElement(open, parent);
      }
    }
  }

  /** After an element: a "," (then, in an object, the next key) or the container's end. */
  private readAfterElement(open: OpenContainer[], parent: OpenContainer): GoJsonValue | undefined {
    this.skipWhitespace();
    const isObject = "key" in parent;
    const separator = this.text[this.position];
    if (separator === ",") {
      this.position++;
      if (isObject) parent.key = this.readKey();
      return undefined;
    }
    if (separator !== (isObject ? "}" : "]")) {
      this.fail(isObject ? "after object key:value pair" : "after array element");
    }
    this.position++;
    open.pop();
    return parent.container;
  }

  /** A whole scalar or empty container, or undefined after opening a non-empty container. */
  private readValueStart(open: OpenContainer[]): GoJsonValue | undefined {
    this.skipWhitespace();
    const next = this.text[this.position];
    if (next === "{" || next === "[") {
      if (open.length + 1 > GO_MAX_NESTING_DEPTH) this.fail("(exceeded max depth)");
      this.position++;
      this.skipWhitespace();
      if (this.text[this.position] === (next === "{" ? "}" : "]")) {
        this.position++;
        return next === "{" ? { kind: "object", entries: [] } : { kind: "array", items: [] };
      }
      if (next === "[") open.push({ container: { kind: "array", items: [] } });
      else open.push({ container: { kind: "object", entries: [] }, key: this.readKey() });
      return undefined;
    }
    if (next === '"') return { kind: "string", value: this.readString() };
    return this.readLiteralOrNumber();
  }

  private readKey(): string {
    this.skipWhitespace();
    if (this.text[this.position] !== '"') this.fail("looking for beginning of object key string");
    const key = this.readString();
    this.skipWhitespace();
    if (this.text[this.position] !== ":") this.fail("after object key");
    this.position++;
    return key;
  }

  private readLiteralOrNumber(): GoJsonValue {
    for (const [literal, value] of LITERALS) {
      if (this.text.startsWith(literal, this.position)) {
        this.position += literal.length;
        return value;
      }
    }
    NUMBER.lastIndex = this.position;
    const number = NUMBER.exec(this.text);
    if (!number) this.fail("looking for beginning of value");
    this.position += number[0].length;
    return { kind: "number", literal: number[0] };
  }

  /** Reads a string literal at the cursor (on its opening quote) and returns its decoded value. */
  private readString(): string {
    let decoded = "";
    this.position++; // "
    for (;;) {
      const unit = this.text.charCodeAt(this.position);
      if (Number.isNaN(unit)) this.fail("in string literal");
      if (unit < 0x20) this.fail("in string literal");
      if (unit === 0x22) {
        this.position++;
        return decoded;
      }
      if (unit === 0x5c) {
        decoded += this.readEscape();
        continue;
      }
      decoded += this.readRawCharacter(unit);
    }
  }

  /** A raw character; a lone surrogate cannot be UTF-8, so Go would have seen U+FFFD. */
  private readRawCharacter(unit: number): string {
    const following = this.text.charCodeAt(this.position + 1);
    if (isHighSurrogate(unit) && isLowSurrogate(following)) {
      this.position += 2;
      return String.fromCharCode(unit, following);
    }
    this.position++;
    return isHighSurrogate(unit) || isLowSurrogate(unit)
      ? REPLACEMENT_CHARACTER
      : String.fromCharCode(unit);
  }

  /** One escape at the cursor (on its backslash); `\uD83D\uDE00` pairs decode to one character. */
  private readEscape(): string {
    const letter = this.text[this.position + 1];
    if (letter !== undefined && Object.hasOwn(SIMPLE_ESCAPES, letter)) {
      this.position += 2;
      return SIMPLE_ESCAPES[letter];
    }
    if (letter !== "u") {
      this.position++;
      this.fail("in string escape code");
    }
    const unit = this.readHexEscape(this.position);
    this.position += 6;
    if (!isHighSurrogate(unit) && !isLowSurrogate(unit)) return String.fromCharCode(unit);
    // Go's unquote: a surrogate escape pairs only with a low surrogate escape right after it.
    if (isHighSurrogate(unit) && this.text.startsWith("\\u", this.position)) {
      const low = this.readHexEscape(this.position);
      if (isLowSurrogate(low)) {
        this.position += 6;
        return String.fromCharCode(unit, low);
      }
    }
    return REPLACEMENT_CHARACTER;
  }

  private readHexEscape(at: number): number {
    const hex = this.text.slice(at + 2, at + 6);
    if (!/^[0-9a-fA-F]{4}$/.test(hex)) {
      this.position = at + 2;
      this.fail("in \\u hexadecimal character escape");
    }
    return parseInt(hex, 16);
  }
}

const LITERALS: [string, GoJsonValue][] = [
  ["true", { kind: "boolean", value: true }],
  ["false", { kind: "boolean", value: false }],
  ["null", { kind: "null" }],
];
