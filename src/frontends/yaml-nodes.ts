// Reading a YAML document node by node while collecting every problem with its
// file:line:column. Documents are parsed with the failsafe schema: every scalar is a
// string, so `idVendor: 0403` keeps its leading zero and `yes` stays "yes".
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Node, type Pair, type YAMLMap } from 'yaml';
import type { Diagnostic, SourceLocation } from '../rules/model.js';
import { didYouMean } from '../text/suggest.js';

export type YamlNode = Node | null | undefined;

function describeNode(node: YamlNode): string {
  if (isMap(node)) return 'a map';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) return `"${String(node.value)}"`;
  return 'nothing';
}

/** Holds one file's text positions and the problems found in it. */
export class YamlReader {
  readonly diagnostics: Diagnostic[] = [];
  readonly file: string;
  errorCount = 0;
  #lines = new LineCounter();

  constructor(file: string) {
    this.file = file;
  }

  /** Parses the text; returns the root node, or undefined when the YAML itself is broken. */
  parse(text: string): YamlNode | undefined {
    const document = parseDocument(text, { schema: 'failsafe', lineCounter: this.#lines, uniqueKeys: true, prettyErrors: false });
    for (const problem of [...document.errors, ...document.warnings]) {
      const position = problem.linePos?.[0] ?? this.#lines.linePos(problem.pos[0]);
      const at = { file: this.file, line: position.line, column: position.col };
      const message = (problem.message.split('\n')[0] ?? problem.message).replace(/ at line \d+, column \d+:?$/, '');
      this.report(problem.name === 'YAMLWarning' ? 'warning' : 'error', at, message);
    }
    return document.errors.length > 0 ? undefined : document.contents;
  }

  at(node: YamlNode, offset = 0): SourceLocation {
    const start = (node?.range?.[0] ?? 0) + offset;
    const { line, col } = this.#lines.linePos(start);
    return { file: this.file, line, column: col };
  }

  report(severity: Diagnostic['severity'], at: SourceLocation, message: string, hint?: string): void {
    if (severity === 'error') this.errorCount++;
    this.diagnostics.push({ severity, at, message, ...(hint ? { hint } : {}) });
  }

  error(node: YamlNode, message: string, hint?: string): void {
    this.report('error', this.at(node), message, hint);
  }

  warn(node: YamlNode, message: string, hint?: string): void {
    this.report('warning', this.at(node), message, hint);
  }

  /** The pairs of a map node, or undefined (with an error) when it is not a map. */
  map(node: YamlNode, what: string): Pair<Node, YamlNode>[] | undefined {
    if (isMap(node)) return (node as YAMLMap<Node, YamlNode>).items;
    this.error(node, `${what}: expected a map, got ${describeNode(node)}`);
    return undefined;
  }

  /** The pairs of a map, with unknown keys reported against `known` (with a did-you-mean hint). */
  knownPairs(node: YamlNode, what: string, known: readonly string[]): { key: string; keyNode: Node; value: YamlNode }[] {
    const pairs = this.map(node, what) ?? [];
    const out = [];
    for (const pair of pairs) {
      const key = isScalar(pair.key) ? String(pair.key.value) : undefined;
      if (key === undefined) {
        this.error(pair.key, `${what}: keys must be plain strings`);
        continue;
      }
      if (!known.includes(key)) {
        this.error(pair.key, `unknown key "${key}" in ${what}`, didYouMean(key, known) ?? `expected one of: ${known.join(', ')}`);
        continue;
      }
      out.push({ key, keyNode: pair.key, value: pair.value });
    }
    return out;
  }

  /** Every pair of a map whose keys are free-form names (env, attrs). */
  namedPairs(node: YamlNode, what: string): { key: string; keyNode: Node; value: YamlNode }[] {
    const out = [];
    for (const pair of this.map(node, what) ?? []) {
      if (!isScalar(pair.key) || String(pair.key.value) === '') {
        this.error(pair.key, `${what}: keys must be non-empty strings`);
        continue;
      }
      out.push({ key: String(pair.key.value), keyNode: pair.key, value: pair.value });
    }
    return out;
  }

  string(node: YamlNode, what: string): string | undefined {
    if (isScalar(node)) return String(node.value);
    this.error(node, `${what}: expected a string, got ${describeNode(node)}`);
    return undefined;
  }

  /** A string or a list of strings, as a list (with the node of each item). */
  strings(node: YamlNode, what: string): { value: string; node: Node }[] | undefined {
    if (isScalar(node)) return [{ value: String(node.value), node }];
    if (isSeq(node)) {
      const items: { value: string; node: Node }[] = [];
      for (const item of node.items as YamlNode[]) {
        const value = this.string(item, `${what} (list item)`);
        if (value === undefined) return undefined;
        items.push({ value, node: item as Node });
      }
      if (items.length === 0) this.error(node, `${what}: expected at least one value, got an empty list`);
      return items.length > 0 ? items : undefined;
    }
    this.error(node, `${what}: expected a string or a list of strings, got ${describeNode(node)}`);
    return undefined;
  }

  list(node: YamlNode, what: string): YamlNode[] | undefined {
    if (isSeq(node)) return node.items as YamlNode[];
    this.error(node, `${what}: expected a list, got ${describeNode(node)}`);
    return undefined;
  }

  boolean(node: YamlNode, what: string): boolean | undefined {
    const text = this.string(node, what);
    if (text === 'true') return true;
    if (text === 'false') return false;
    if (text !== undefined) this.error(node, `${what}: expected true or false, got "${text}"`);
    return undefined;
  }

  integer(node: YamlNode, what: string): number | undefined {
    const text = this.string(node, what);
    if (text !== undefined && /^-?\d{1,9}$/.test(text)) return Number(text);
    if (text !== undefined) this.error(node, `${what}: expected a whole number, got "${text}"`);
    return undefined;
  }

  /** Offset of a scalar's text inside its source (past an opening quote). */
  textOffset(node: YamlNode): number {
    return isScalar(node) && (node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE') ? 1 : 0;
  }
}

export { isMap, isScalar, isSeq };
