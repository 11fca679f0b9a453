// depmod's binary indexes (modules.alias.bin, modules.dep.bin, modules.builtin.bin,
// modules.builtin.alias.bin), read as libkmod reads them: a trie kept in one buffer and walked
// per lookup, so nothing is parsed at start (the text modules.alias has tens of thousands of
// lines: parsing it cost a second on a board's slow CPU).
// Format (libkmod-index.c, big-endian): magic, version, root offset; a node offset's top bits
// say what the node has: a prefix (NUL-terminated), children (first and last byte, then an
// offset per byte in between) and values (a count, then priority and NUL-terminated text each).
import { readFileSync } from 'node:fs';
import { fnmatchTester } from '../text/fnmatch.js';

const MAGIC = 0xb007f457;
const VERSION_MAJOR = 2;
const NODE_PREFIX = 0x80000000;
const NODE_VALUES = 0x40000000;
const NODE_CHILDS = 0x20000000;
const NODE_MASK = 0x0fffffff;

export interface IndexValue {
  priority: number;
  value: string;
}

interface IndexNode {
  prefix: string;
  first: number;
  last: number;
  /** Where the children's offsets begin (first..last), or -1. */
  children: number;
  /** Where the values begin, or -1. */
  values: number;
}

export class KmodIndex {
  #data: Buffer;
  #root: number;
  #patterns = new Map<string, (text: string) => boolean>();

  /** Throws when `data` is not a depmod index. */
  constructor(data: Buffer) {
    if (data.length < 12 || data.readUInt32BE(0) !== MAGIC || data.readUInt32BE(4) >>> 16 !== VERSION_MAJOR) throw new Error('not a depmod index (magic or version)');
    this.#data = data;
    this.#root = data.readUInt32BE(8);
  }

  /** The index in `path`; undefined when it is missing or not an index. */
  static open(path: string): KmodIndex | undefined {
    try {
      return new KmodIndex(readFileSync(path));
    } catch {
      return undefined;
    }
  }

  /** The values stored under exactly `key` (modules.dep.bin: a module's dependencies line). */
  lookup(key: string): IndexValue[] {
    let node = this.#node(this.#root);
    let i = 0;
    while (node !== undefined) {
      for (let j = 0; j < node.prefix.length; j++, i++) if (node.prefix[j] !== key[i]) return [];
      if (i === key.length) return this.#values(node);
      node = this.#child(node, key.charCodeAt(i));
      i++;
    }
    return [];
  }

  /** The values of every pattern (fnmatch: `*`, `?`, `[...]`) that matches `key`, by priority (modules.alias.bin). */
  searchWild(key: string): IndexValue[] {
    const out: IndexValue[] = [];
    this.#searchWild(this.#node(this.#root), key, 0, out);
    return out.sort((a, b) => a.priority - b.priority);
  }

  #searchWild(start: IndexNode | undefined, key: string, from: number, out: IndexValue[]): void {
    let node = start;
    let i = from;
    while (node !== undefined) {
      let j = 0;
      for (; j < node.prefix.length; j++) {
        const c = node.prefix[j] as string;
        if (c === '*' || c === '?' || c === '[') {
          this.#matchAll(node, j, '', key.slice(i + j), out);
          return;
        }
        if (c !== key[i + j]) return;
      }
      i += j;
      for (const wild of ['*', '?', '[']) {
        const child = this.#child(node, wild.charCodeAt(0));
        if (child !== undefined) this.#matchAll(child, 0, wild, key.slice(i), out);
      }
      if (i === key.length) {
        out.push(...this.#values(node));
        return;
      }
      node = this.#child(node, key.charCodeAt(i));
      i++;
    }
  }

  // Every pattern below `node` (from its prefix's character `j` on, after `pattern`) tried on `rest`.
  #matchAll(node: IndexNode, j: number, pattern: string, rest: string, out: IndexValue[]): void {
    const here = pattern + node.prefix.slice(j);
    for (let c = node.first; node.children >= 0 && c <= node.last; c++) {
      const child = this.#child(node, c);
      if (child !== undefined) this.#matchAll(child, 0, here + String.fromCharCode(c), rest, out);
    }
    if (node.values >= 0 && this.#tester(here)(rest)) out.push(...this.#values(node));
  }

  #tester(pattern: string): (text: string) => boolean {
    let test = this.#patterns.get(pattern);
    if (test === undefined) this.#patterns.set(pattern, (test = fnmatchTester(pattern)));
    return test;
  }

  #node(offset: number): IndexNode | undefined {
    const at = offset & NODE_MASK;
    if (at === 0) return undefined;
    const data = this.#data;
    let p = at;
    let prefix = '';
    if (offset & NODE_PREFIX) {
      const end = data.indexOf(0, p);
      prefix = data.toString('latin1', p, end);
      p = end + 1;
    }
    let first = 1;
    let last = 0;
    let children = -1;
    if (offset & NODE_CHILDS) {
      first = data[p] as number;
      last = data[p + 1] as number;
      children = p + 2;
      p = children + 4 * (last - first + 1);
    }
    return { prefix, first, last, children, values: offset & NODE_VALUES ? p : -1 };
  }

  #child(node: IndexNode, c: number): IndexNode | undefined {
    if (node.children < 0 || c < node.first || c > node.last || Number.isNaN(c)) return undefined;
    return this.#node(this.#data.readUInt32BE(node.children + 4 * (c - node.first)));
  }

  #values(node: IndexNode): IndexValue[] {
    if (node.values < 0) return [];
    const data = this.#data;
    const count = data.readUInt32BE(node.values);
    const out: IndexValue[] = [];
    let p = node.values + 4;
    for (let n = 0; n < count; n++) {
      const priority = data.readUInt32BE(p);
      const end = data.indexOf(0, p + 4);
      out.push({ priority, value: data.toString('latin1', p + 4, end) });
      p = end + 1;
    }
    return out;
  }
}
