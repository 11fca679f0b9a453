// The hardware database's text files (hwdb.d/*.hwdb), parsed: the fallback where no
// up-to-date hwdb.bin exists (a board without systemd-hwdb, or files edited since its last
// update). Parsing Debian's ~120,000 patterns takes about 0.3 s, so it happens on first use,
// and each pattern is filed by its first characters so a lookup tests only those that can match.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fnmatchTester } from '../text/fnmatch.js';

export const HWDB_DIRS = ['/etc/udev/hwdb.d', '/run/udev/hwdb.d', '/usr/local/lib/udev/hwdb.d', '/usr/lib/udev/hwdb.d'];

/** The *.hwdb files in name order; a name in an earlier directory hides the same name in later ones. */
export function hwdbTextFiles(dirs: readonly string[] = HWDB_DIRS): string[] {
  const byName = new Map<string, string>();
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(dir).filter((n) => n.endsWith('.hwdb'));
    } catch (error) {
      // A missing directory is normal; any other error must not pass for "no entries".
      if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR') continue;
      throw error;
    }
    for (const name of names) if (!byName.has(name)) byName.set(name, join(dir, name));
  }
  return [...byName.keys()].sort().map((name) => byName.get(name) as string);
}

const PREFIX = 8;

interface Entry {
  pattern: string;
  test: ((modalias: string) => boolean) | undefined;
  /** The block's " KEY=value" lines. */
  properties: string;
  /** Later files and lines win. */
  order: number;
}

export class HwdbText {
  source = 'the hwdb.d text files';
  #buckets = new Map<string, Entry[]>();
  #short: Entry[] = [];
  #order = 0;

  static load(dirs: readonly string[] = HWDB_DIRS): HwdbText {
    const db = new HwdbText();
    for (const path of hwdbTextFiles(dirs)) db.add(readFileSync(path, 'utf8'));
    return db;
  }

  /**
   * Adds one file's records as systemd-hwdb reads them: match lines, then indented
   * KEY=value lines, a blank line between records. A `#` starts a comment anywhere on a
   * line (so a value ends before it), and a match line straight after properties ends the
   * record and is dropped, as systemd-hwdb drops it.
   */
  add(text: string): void {
    let patterns: string[] = [];
    let properties: string[] = [];
    const end = (): void => {
      if (patterns.length > 0 && properties.length > 0) {
        const joined = properties.join('\n');
        for (const pattern of patterns) this.#index({ pattern, test: undefined, properties: joined, order: this.#order++ });
      }
      patterns = [];
      properties = [];
    };
    for (const raw of text.split('\n')) {
      const hash = raw.indexOf('#');
      const line = (hash < 0 ? raw : raw.slice(0, hash)).trimEnd();
      if (hash === 0) continue;
      if (line === '') end();
      else if (line.startsWith(' ')) {
        if (patterns.length > 0) properties.push(line.trimStart());
      } else if (properties.length > 0) end();
      else patterns.push(line);
    }
    end();
  }

  #index(entry: Entry): void {
    const literal = /^[^*?[\\]*/.exec(entry.pattern)?.[0] ?? '';
    if (literal.length < PREFIX) {
      this.#short.push(entry);
      return;
    }
    const key = literal.slice(0, PREFIX);
    const bucket = this.#buckets.get(key);
    if (bucket) bucket.push(entry);
    else this.#buckets.set(key, [entry]);
  }

  /** The properties of every entry whose pattern matches `modalias`, later entries overriding. */
  lookup(modalias: string): Record<string, string> {
    const matches: Entry[] = [];
    for (const entry of [...(this.#buckets.get(modalias.slice(0, PREFIX)) ?? []), ...this.#short]) {
      entry.test ??= fnmatchTester(entry.pattern);
      if (entry.test(modalias)) matches.push(entry);
    }
    matches.sort((a, b) => a.order - b.order);
    const out: Record<string, string> = {};
    for (const entry of matches) {
      for (const line of entry.properties.split('\n')) {
        const eq = line.indexOf('=');
        if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1);
      }
    }
    return out;
  }
}
