// The compiled hardware database, hwdb.bin, as systemd-hwdb and eudev's `udevadm hwdb
// --update` write it: a trie of the modalias patterns, so a lookup walks one path of
// nodes instead of testing ~120,000 patterns, and nothing is parsed at load. The layout
// (little-endian): a header with the signature "KSLPHHRH" and the sizes of its records;
// each node holds the offset of a prefix string, its children (a character and a node
// offset each, sorted) and its values (offsets of " KEY" and value strings; from format
// v2 also the source file's priority and line, to decide between duplicates).
import { fnmatchTester } from '../text/fnmatch.js';

const SIGNATURE = 'KSLPHHRH';
const HEADER_SIZE = 80;
// A corrupt file could point nodes at each other; no real modalias comes near this depth.
const MAX_DEPTH = 4096;
// Bounds the compiled patterns kept between lookups (Debian's wildcard subtrees hold a few hundred).
const MAX_CACHED_PATTERNS = 20_000;

export class HwdbFormatError extends Error {}

interface Chosen {
  value: string;
  priority: number;
  filename: number;
  line: number;
}

export class HwdbTrie {
  readonly #data: Buffer;
  readonly #nodeSize: number;
  readonly #childSize: number;
  readonly #valueSize: number;
  readonly #root: number;
  /**
   * The compiled patterns below each wildcard the searches reached, by where the wildcard
   * is (a node's offset, doubled, plus one when it is in the node's own prefix): each
   * node has one path from the root, so its pattern is the same on every lookup.
   */
  readonly #below = new Map<number, BelowPattern[]>();
  #cached = 0;

  /** Checks the header; throws HwdbFormatError for anything that is not a whole hwdb.bin. */
  constructor(data: Buffer, readonly source = 'hwdb.bin') {
    if (data.length < HEADER_SIZE || data.toString('latin1', 0, 8) !== SIGNATURE) throw new HwdbFormatError(`${source}: not a hwdb.bin (no "${SIGNATURE}" signature)`);
    this.#data = data;
    const size = this.#u64(16);
    if (size !== data.length) throw new HwdbFormatError(`${source}: the header says ${size} bytes, the file has ${data.length} (caught mid-write?)`);
    this.#nodeSize = this.#u64(32);
    this.#childSize = this.#u64(40);
    this.#valueSize = this.#u64(48);
    this.#root = this.#u64(56);
    if (this.#nodeSize < 24 || this.#childSize < 16 || this.#valueSize < 16) throw new HwdbFormatError(`${source}: record sizes ${this.#nodeSize}/${this.#childSize}/${this.#valueSize} are too small`);
    this.#node(this.#root);
  }

  /** The properties of every pattern matching `modalias`, as systemd's sd_hwdb gives them. */
  lookup(modalias: string): Record<string, string> {
    const found = new Map<string, Chosen>();
    this.#search(Buffer.from(modalias, 'utf8'), found);
    const out: Record<string, string> = {};
    for (const [key, chosen] of found) out[key] = chosen.value;
    return out;
  }

  #search(search: Buffer, found: Map<string, Chosen>): void {
    let offset: number | undefined = this.#root;
    let i = 0;
    for (let depth = 0; offset !== undefined; depth++) {
      if (depth > MAX_DEPTH) throw new HwdbFormatError(`${this.source}: the trie is deeper than ${MAX_DEPTH}`);
      const node = this.#node(offset);
      if (node.prefix !== 0) {
        for (let p = 0; ; p++) {
          const c = this.#byte(node.prefix + p);
          if (c === 0) {
            i += p;
            break;
          }
          if (WILDCARDS.includes(c)) {
            this.#matchBelow(offset * 2 + 1, offset, node.prefix + p, '', search.toString('utf8', i + p), found);
            return;
          }
          if (c !== search[i + p]) return;
        }
      }
      let rest: string | undefined;
      for (const wildcard of WILDCARDS) {
        const child = this.#child(node, wildcard);
        if (child === undefined) continue;
        rest ??= search.toString('utf8', i);
        this.#matchBelow(child * 2, child, this.#prefixStart(child), String.fromCharCode(wildcard), rest, found);
      }
      if (i === search.length) {
        this.#addValues(node, found);
        return;
      }
      offset = this.#child(node, search[i] as number);
      i++;
    }
  }

  /** Below a wildcard, each pattern is tested whole against the rest of the search. */
  #matchBelow(key: number, offset: number, prefixFrom: number, lead: string, rest: string, found: Map<string, Chosen>): void {
    let patterns = this.#below.get(key);
    if (patterns === undefined) {
      patterns = [];
      this.#collect(offset, prefixFrom, lead, patterns, 0);
      this.#cached += patterns.length;
      if (this.#cached > MAX_CACHED_PATTERNS) {
        this.#below.clear();
        this.#cached = patterns.length;
      }
      this.#below.set(key, patterns);
    }
    for (const pattern of patterns) if (pattern.test(rest)) this.#addValues(this.#node(pattern.node), found);
  }

  /**
   * Every pattern of the subtree, compiled, in sd_hwdb's order (children before their node).
   * Patterns are built as latin1 strings (one character per byte) and decoded as UTF-8 only
   * when they hold a byte past ASCII.
   */
  #collect(offset: number, prefixFrom: number, pattern: string, out: BelowPattern[], depth: number): void {
    if (depth > MAX_DEPTH) throw new HwdbFormatError(`${this.source}: the trie is deeper than ${MAX_DEPTH}`);
    const node = this.#node(offset);
    const here = prefixFrom === 0 ? pattern : pattern + this.#data.toString('latin1', prefixFrom, this.#stringEnd(prefixFrom));
    for (let n = 0; n < node.children; n++) {
      const entry = node.offset + this.#nodeSize + n * this.#childSize;
      const child = this.#u64(entry + 8);
      this.#collect(child, this.#prefixStart(child), here + String.fromCharCode(this.#byte(entry)), out, depth + 1);
    }
    if (node.values === 0) return;
    // eslint-disable-next-line no-control-regex
    const text = /[^\x00-\x7f]/.test(here) ? Buffer.from(here, 'latin1').toString('utf8') : here;
    out.push({ node: offset, test: fnmatchTester(text) });
  }

  #addValues(node: TrieNode, found: Map<string, Chosen>): void {
    const first = node.offset + this.#nodeSize + node.children * this.#childSize;
    const v2 = this.#valueSize >= 32;
    for (let n = 0; n < node.values; n++) {
      const entry = first + n * this.#valueSize;
      const key = this.#string(this.#u64(entry));
      // Keys start with a space; other prefixes are kept for future extensions.
      if (!key.startsWith(' ')) continue;
      const chosen: Chosen = { value: this.#string(this.#u64(entry + 8)), priority: 0, filename: 0, line: 0 };
      const old = found.get(key.slice(1));
      if (v2) {
        chosen.filename = this.#u64(entry + 16);
        chosen.line = this.#data.readUInt32LE(entry + 24);
        chosen.priority = this.#data.readUInt16LE(entry + 28);
        if (old !== undefined && lowerThan(chosen, old)) continue;
      }
      found.set(key.slice(1), chosen);
    }
  }

  #node(offset: number): TrieNode {
    this.#check(offset + this.#nodeSize);
    const node = { offset, prefix: this.#u64(offset), children: this.#byte(offset + 8), values: this.#u64(offset + 16) };
    this.#check(offset + this.#nodeSize + node.children * this.#childSize + node.values * this.#valueSize);
    return node;
  }

  #prefixStart(offset: number): number {
    return this.#u64(offset);
  }

  /** The child for character `c`: children are sorted by character. */
  #child(node: TrieNode, c: number): number | undefined {
    let low = 0;
    let high = node.children - 1;
    while (low <= high) {
      const middle = (low + high) >> 1;
      const entry = node.offset + this.#nodeSize + middle * this.#childSize;
      const have = this.#byte(entry);
      if (have === c) return this.#u64(entry + 8);
      if (have < c) low = middle + 1;
      else high = middle - 1;
    }
    return undefined;
  }

  #string(offset: number): string {
    return this.#data.toString('utf8', offset, this.#stringEnd(offset));
  }

  #stringEnd(offset: number): number {
    const end = this.#data.indexOf(0, offset);
    if (offset >= this.#data.length || end < 0) throw new HwdbFormatError(`${this.source}: a string at ${offset} runs past the end`);
    return end;
  }

  #byte(offset: number): number {
    this.#check(offset + 1);
    return this.#data[offset] as number;
  }

  #u64(offset: number): number {
    this.#check(offset + 8);
    const high = this.#data.readUInt32LE(offset + 4);
    if (high !== 0) throw new HwdbFormatError(`${this.source}: an offset or count at ${offset} is past 4 GiB`);
    return this.#data.readUInt32LE(offset);
  }

  #check(end: number): void {
    if (end > this.#data.length) throw new HwdbFormatError(`${this.source}: a record runs past the end of the file (${end} > ${this.#data.length})`);
  }
}

interface BelowPattern {
  /** The node holding the pattern's values. */
  node: number;
  test: (rest: string) => boolean;
}

interface TrieNode {
  offset: number;
  prefix: number;
  children: number;
  values: number;
}

const WILDCARDS = ['*', '?', '['].map((c) => c.charCodeAt(0));

/** A duplicate key keeps the entry of the higher file priority, then of the later line (format v3); v2 files carry no priority and order files by their name's offset. */
function lowerThan(entry: Chosen, old: Chosen): boolean {
  if (entry.priority === 0) return entry.filename < old.filename || (entry.filename === old.filename && entry.line < old.line);
  return entry.priority < old.priority || (entry.priority === old.priority && entry.line < old.line);
}
