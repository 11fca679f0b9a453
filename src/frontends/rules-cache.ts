// A cache of parsed YAML rule files, so a start does not parse YAML again (the parser is
// most of loading the shipped rules: ~45 ms of a daemon's start here). One JSON file in the
// cache directory keeps each rule file's plain tree (yaml-nodes.ts) under its path and
// identity (size, mtime, ctime, inode, device): a file changed in any way is parsed again.
// Compiling (matchers, templates, accounts) still runs at every load. The cache is only a
// shortcut: one that cannot be read, is corrupt, or lives in a directory others could
// write to is ignored, and one that cannot be written is reported, never an error.
import { fileIdentity, readPrivateFile, writePrivateFile } from '../private-files.js';
import type { ParsedYaml } from './yaml-nodes.js';

// Bumped whenever ParsedYaml's shape or the parsing that produces it changes.
// 2: parsed files keep their text, and maps where they end (each rule's text is recorded).
const FORMAT = 2;
const FILE = 'rules.json';
// Rule files kept; the least recently used go first (test runs load many temporary directories).
const MAX_ENTRIES = 256;

interface Entry {
  identity: string;
  usedAt: number;
  parsed: ParsedYaml;
}

export interface RuleCache {
  /** The file's identity now (taken before it is read) and what was parsed of it, if that is cached. */
  lookup(path: string): { identity: string; parsed: ParsedYaml | undefined } | undefined;
  store(path: string, identity: string, parsed: ParsedYaml): void;
  /** Writes the cache if it changed; returns why it could not be written, if so. */
  save(): string | undefined;
}

function isEntry(value: unknown): value is Entry {
  const e = value as Entry;
  return typeof e?.identity === 'string' && typeof e.usedAt === 'number' && typeof e.parsed?.text === 'string' && Array.isArray(e.parsed.lineStarts) && Array.isArray(e.parsed.problems);
}

function readEntries(dir: string): Map<string, Entry> {
  const entries = new Map<string, Entry>();
  const text = readPrivateFile(dir, FILE);
  if (text === undefined) return entries;
  try {
    const data = JSON.parse(text.toString('utf8')) as { format?: unknown; entries?: Record<string, unknown> };
    if (data.format !== FORMAT || typeof data.entries !== 'object' || data.entries === null) return entries;
    for (const [path, entry] of Object.entries(data.entries)) if (isEntry(entry)) entries.set(path, entry);
  } catch {
    // Corrupt or caught mid-write by another process: parse the rules, then write it anew.
  }
  return entries;
}

/** The rule cache in `dir` (created on first save, mode 0700). */
export function openRuleCache(dir: string): RuleCache {
  let entries: Map<string, Entry> | undefined;
  let changed = false;
  const now = Date.now();
  return {
    lookup(path) {
      const identity = fileIdentity(path);
      if (identity === undefined) return undefined;
      entries ??= readEntries(dir);
      const entry = entries.get(path);
      if (entry?.identity !== identity) return { identity, parsed: undefined };
      // Noted at most daily, so that a start that parsed nothing writes nothing (flash wears).
      if (now - entry.usedAt > 86_400_000) {
        entry.usedAt = now;
        changed = true;
      }
      return { identity, parsed: entry.parsed };
    },
    store(path, identity, parsed) {
      entries ??= readEntries(dir);
      entries.set(path, { identity, usedAt: now, parsed });
      changed = true;
    },
    save() {
      if (!changed || entries === undefined) return undefined;
      const kept = [...entries].sort(([, a], [, b]) => b.usedAt - a.usedAt).slice(0, MAX_ENTRIES);
      const failure = writePrivateFile(dir, FILE, JSON.stringify({ format: FORMAT, entries: Object.fromEntries(kept) }));
      if (failure === undefined) changed = false;
      return failure;
    },
  };
}
