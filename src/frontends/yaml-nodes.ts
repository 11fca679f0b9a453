// Reading a YAML document node by node while collecting every problem with its
// file:line:column. Documents are parsed with the failsafe schema: every scalar is a
// string, so `idVendor: 0403` keeps its leading zero and `yes` stays "yes". The parsed
// document becomes a plain tree (what rules use of it: maps, lists, strings and where
// each starts), which the rule cache (rules-cache.ts) can keep as JSON in place of parsing.
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node } from 'yaml';
import type { Diagnostic, SourceLocation } from '../rules/model.js';
import { didYouMean } from '../text/suggest.js';

/** A node of the plain tree: `start` is its offset in the text, `other` an alias. */
export type TreeNode =
  | { kind: 'scalar'; start: number; value: string; quoted: boolean }
  | { kind: 'map'; start: number; end: number; pairs: { key: TreeNode | null; value: TreeNode | null }[] }
  | { kind: 'seq'; start: number; items: (TreeNode | null)[] }
  | { kind: 'other'; start: number };
export type YamlNode = TreeNode | null | undefined;
type Scalar = Extract<TreeNode, { kind: 'scalar' }>;

/** One file parsed: its tree, where its lines start, and the YAML problems found. */
export interface ParsedYaml {
  /** The file's text (each rule's own text is recorded with it: Rule.text). */
  text: string;
  /** Undefined when the YAML itself is broken. */
  tree: TreeNode | null | undefined;
  lineStarts: number[];
  problems: { severity: Diagnostic['severity']; offset: number; message: string }[];
}

function toTree(node: Node | null | undefined): TreeNode | null {
  if (node === null || node === undefined) return null;
  const start = node.range?.[0] ?? 0;
  if (isScalar(node)) return { kind: 'scalar', start, value: String(node.value), quoted: node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE' };
  if (isMap(node)) return { kind: 'map', start, end: node.range?.[1] ?? start, pairs: node.items.map((pair) => ({ key: toTree(pair.key as Node), value: toTree(pair.value as Node) })) };
  if (isSeq(node)) return { kind: 'seq', start, items: node.items.map((item) => toTree(item as Node)) };
  return { kind: 'other', start }; // an alias
}

/** Parses one YAML text into the plain tree. */
export function parseYaml(text: string): ParsedYaml {
  const lines = new LineCounter();
  const document = parseDocument(text, { schema: 'failsafe', lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const problems = [...document.errors, ...document.warnings].map((problem) => ({
    severity: problem.name === 'YAMLWarning' ? ('warning' as const) : ('error' as const),
    offset: problem.pos[0],
    message: (problem.message.split('\n')[0] ?? problem.message).replace(/ at line \d+, column \d+:?$/, ''),
  }));
  return { text, tree: document.errors.length > 0 ? undefined : toTree(document.contents as Node | null), lineStarts: lines.lineStarts, problems };
}

export const isMapNode = (node: YamlNode): node is Extract<TreeNode, { kind: 'map' }> => node?.kind === 'map';
export const isSeqNode = (node: YamlNode): node is Extract<TreeNode, { kind: 'seq' }> => node?.kind === 'seq';
const isScalarNode = (node: YamlNode): node is Scalar => node?.kind === 'scalar';

function describeNode(node: YamlNode): string {
  if (isMapNode(node)) return 'a map';
  if (isSeqNode(node)) return 'a list';
  if (isScalarNode(node)) return `"${node.value}"`;
  return 'nothing';
}

/** Holds one file's text positions and the problems found in it. */
export class YamlReader {
  readonly diagnostics: Diagnostic[] = [];
  readonly file: string;
  errorCount = 0;
  #lineStarts: readonly number[];

  /** A reader of a parsed file; its YAML problems become the first diagnostics. */
  constructor(file: string, parsed: ParsedYaml) {
    this.file = file;
    this.#lineStarts = parsed.lineStarts;
    for (const problem of parsed.problems) this.report(problem.severity, this.position(problem.offset), problem.message);
  }

  /** 1-based line and column of an offset in the text. */
  position(offset: number): SourceLocation {
    const starts = this.#lineStarts;
    let low = 0;
    let high = starts.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if ((starts[mid] as number) <= offset) low = mid;
      else high = mid - 1;
    }
    return { file: this.file, line: low + 1, column: offset - (starts[low] ?? 0) + 1 };
  }

  at(node: YamlNode, offset = 0): SourceLocation {
    return this.position((node?.start ?? 0) + offset);
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
  map(node: YamlNode, what: string): { key: TreeNode | null; value: TreeNode | null }[] | undefined {
    if (isMapNode(node)) return node.pairs;
    this.error(node, `${what}: expected a map, got ${describeNode(node)}`);
    return undefined;
  }

  /** The pairs of a map, with unknown keys reported against `known` (with a did-you-mean hint). */
  knownPairs(node: YamlNode, what: string, known: readonly string[]): { key: string; keyNode: TreeNode; value: YamlNode }[] {
    const pairs = this.map(node, what) ?? [];
    const out = [];
    for (const pair of pairs) {
      const key = isScalarNode(pair.key) ? pair.key.value : undefined;
      if (key === undefined || pair.key === null) {
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
  namedPairs(node: YamlNode, what: string): { key: string; keyNode: TreeNode; value: YamlNode }[] {
    const out = [];
    for (const pair of this.map(node, what) ?? []) {
      if (!isScalarNode(pair.key) || pair.key.value === '') {
        this.error(pair.key, `${what}: keys must be non-empty strings`);
        continue;
      }
      out.push({ key: pair.key.value, keyNode: pair.key, value: pair.value });
    }
    return out;
  }

  string(node: YamlNode, what: string): string | undefined {
    if (isScalarNode(node)) return node.value;
    this.error(node, `${what}: expected a string, got ${describeNode(node)}`);
    return undefined;
  }

  /** A string or a list of strings, as a list (with the node of each item). */
  strings(node: YamlNode, what: string): { value: string; node: TreeNode }[] | undefined {
    if (isScalarNode(node)) return [{ value: node.value, node }];
    if (isSeqNode(node)) {
      const items: { value: string; node: TreeNode }[] = [];
      for (const item of node.items) {
        const value = this.string(item, `${what} (list item)`);
        if (value === undefined) return undefined;
        items.push({ value, node: item as TreeNode });
      }
      if (items.length === 0) this.error(node, `${what}: expected at least one value, got an empty list`);
      return items.length > 0 ? items : undefined;
    }
    this.error(node, `${what}: expected a string or a list of strings, got ${describeNode(node)}`);
    return undefined;
  }

  list(node: YamlNode, what: string): YamlNode[] | undefined {
    if (isSeqNode(node)) return node.items;
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
    return isScalarNode(node) && node.quoted ? 1 : 0;
  }
}
