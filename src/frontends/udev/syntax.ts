// The text of a udev .rules file as udev reads it: `#` comment lines (skipped even inside
// a continuation), a trailing backslash continues a rule on the next line (an empty line
// ends it), and each rule is a list of KEY[{attr}] OP "value" tokens separated by commas
// or whitespace. Positions are kept so a diagnostic names the line and column.

/** udev's limit on one rule, continuations included: a longer rule is dropped. */
export const MAX_RULE_LENGTH = 16384;

export type UdevOperator = '==' | '!=' | '+=' | '-=' | '=' | ':=';

export interface UdevToken {
  key: string;
  attr: string | undefined;
  op: UdevOperator;
  value: string;
  caseInsensitive: boolean;
  /** The token as written, for traces. */
  text: string;
  line: number;
  column: number;
}

export interface UdevRuleLine {
  /** Line and column where the rule starts. */
  line: number;
  column: number;
  tokens: UdevToken[];
}

export interface SyntaxProblem {
  line: number;
  column: number;
  message: string;
}

/** A logical rule: its text and, for each character, where it came from. */
interface LogicalLine {
  text: string;
  /** Start offsets in `text` of each physical piece, with its line and first column. */
  pieces: { offset: number; line: number; column: number }[];
}

function position(logical: LogicalLine, offset: number): { line: number; column: number } {
  let piece = logical.pieces[0] as LogicalLine['pieces'][number];
  for (const p of logical.pieces) if (p.offset <= offset) piece = p;
  return { line: piece.line, column: piece.column + (offset - piece.offset) };
}

/** Joins continuation lines into rules; reports rules that are too long or never finished. */
export function logicalLines(text: string): { lines: LogicalLine[]; problems: SyntaxProblem[] } {
  const physical = text.split('\n');
  if (physical.at(-1) === '') physical.pop();
  const lines: LogicalLine[] = [];
  const problems: SyntaxProblem[] = [];
  let continuation: LogicalLine | undefined;
  let tooLong = false;
  let start = 0;
  physical.forEach((raw, index) => {
    const lineNo = index + 1;
    const indent = raw.length - raw.trimStart().length;
    let line = raw.slice(indent);
    if (line.startsWith('#')) return;
    const piece = { offset: continuation?.text.length ?? 0, line: lineNo, column: indent + 1 };
    if (continuation === undefined) start = lineNo;
    if (continuation !== undefined && !tooLong) {
      if (continuation.text.length + line.length >= MAX_RULE_LENGTH) tooLong = true;
    } else if (continuation === undefined && line.length >= MAX_RULE_LENGTH) {
      tooLong = true;
    }
    const continues = line.endsWith('\\');
    if (continues) line = line.slice(0, -1);
    if (continuation === undefined) continuation = { text: line, pieces: [piece] };
    else if (!tooLong) {
      continuation.pieces.push(piece);
      continuation.text += line;
    }
    if (continues) return;
    if (tooLong) problems.push({ line: start, column: 1, message: `rule is longer than ${MAX_RULE_LENGTH} characters; ignored` });
    else if (continuation.text.length > 0) lines.push(continuation);
    continuation = undefined;
    tooLong = false;
  });
  if (continuation !== undefined) problems.push({ line: start, column: 1, message: 'unexpected end of file after a line continuation; rule ignored' });
  return { lines, problems };
}

const OPERATORS: readonly UdevOperator[] = ['==', '!=', '+=', '-=', ':=', '='];

/** Reads a quoted value at `i` (after an optional e/i prefix); returns it and the offset after the closing quote. */
function readValue(text: string, i: number): { value: string; caseInsensitive: boolean; end: number } | string {
  let escaped = false;
  let caseInsensitive = false;
  for (let k = 0; k < 2 && text[i] !== '"'; k++) {
    if (text[i] === 'e' && !escaped) escaped = true;
    else if (text[i] === 'i' && !caseInsensitive) caseInsensitive = true;
    else return 'expected a value in double quotes';
    i++;
  }
  if (text[i] !== '"') return 'expected a value in double quotes';
  let value = '';
  for (let j = i + 1; j < text.length; j++) {
    const c = text[j] as string;
    if (c === '"') return { value: escaped ? unescapeC(value) : value, caseInsensitive, end: j + 1 };
    if (c === '\\' && escaped && j + 1 < text.length) {
      value += c + (text[j + 1] as string);
      j++;
    } else if (c === '\\' && !escaped && text[j + 1] === '"') {
      value += '"';
      j++;
    } else value += c;
  }
  return 'missing closing double quote';
}

const C_ESCAPES: Record<string, string> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\', '"': '"', "'": "'" };

/** The C escapes of an e"..." value. */
function unescapeC(s: string): string {
  return s.replace(/\\(x[0-9a-fA-F]{2}|[0-7]{3}|.)/g, (all, e: string) => {
    if (e.startsWith('x')) return String.fromCharCode(Number.parseInt(e.slice(1), 16));
    if (/^[0-7]{3}$/.test(e)) return String.fromCharCode(Number.parseInt(e, 8));
    return C_ESCAPES[e] ?? all;
  });
}

/** Splits one rule into tokens; the first problem makes the whole rule invalid, as in udev. */
export function parseRule(logical: LogicalLine): { rule: UdevRuleLine; problem?: undefined } | { problem: SyntaxProblem; rule?: undefined } {
  const text = logical.text;
  const tokens: UdevToken[] = [];
  const fail = (offset: number, message: string) => ({ problem: { ...position(logical, offset), message } });
  let i = 0;
  for (;;) {
    while (i < text.length && /[\s,]/.test(text[i] as string)) i++;
    if (i >= text.length) break;
    const keyStart = i;
    while (i < text.length && !/[\s={]/.test(text[i] as string) && !('+-!:'.includes(text[i] as string) && text[i + 1] === '=')) i++;
    if (i >= text.length) return fail(keyStart, `expected an operator after "${text.slice(keyStart)}"`);
    const key = text.slice(keyStart, i);
    let attr: string | undefined;
    if (text[i] === '{') {
      const close = text.indexOf('}', i);
      if (close < 0) return fail(i, `missing "}" after "${text.slice(keyStart, i + 1)}"`);
      attr = text.slice(i + 1, close);
      i = close + 1;
    }
    while (i < text.length && /\s/.test(text[i] as string)) i++;
    const op = OPERATORS.find((o) => text.startsWith(o, i));
    if (op === undefined || key === '') return fail(i, `expected an operator (== != = += -= :=) after "${text.slice(keyStart, i) || text[i]}"`);
    i += op.length;
    while (i < text.length && /\s/.test(text[i] as string)) i++;
    const value = readValue(text, i);
    if (typeof value === 'string') return fail(i, `${key}: ${value}`);
    tokens.push({ key, attr, op, value: value.value, caseInsensitive: value.caseInsensitive, text: text.slice(keyStart, value.end), ...position(logical, keyStart) });
    i = value.end;
  }
  return { rule: { ...position(logical, 0), tokens } };
}
