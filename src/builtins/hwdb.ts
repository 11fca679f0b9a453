// hwdb: properties from systemd's hardware database text files (hwdb.d/*.hwdb), looked up
// by modalias: vendor and model names, input quirks, sensor mounts, autosuspend... Read
// once, on first use (the files are large), and indexed by the first characters of each
// pattern so a lookup tests only patterns that can match.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fnmatchRegExp } from '../text/fnmatch.js';
import { deviceChain } from './device-chain.js';
import type { Builtin } from '../rules/builtin.js';

export const HWDB_DIRS = ['/etc/udev/hwdb.d', '/run/udev/hwdb.d', '/usr/local/lib/udev/hwdb.d', '/usr/lib/udev/hwdb.d'];
const PREFIX = 8;

interface Entry {
  pattern: string;
  regex: RegExp | undefined;
  /** The block's " KEY=value" lines. */
  properties: string;
  /** Later files and lines win. */
  order: number;
}

export class Hwdb {
  #buckets = new Map<string, Entry[]>();
  #short: Entry[] = [];
  #order = 0;
  readonly files: string[] = [];

  static load(dirs: readonly string[] = HWDB_DIRS): Hwdb {
    const byName = new Map<string, string>();
    for (const dir of dirs) {
      let names: string[];
      try {
        names = readdirSync(dir).filter((n) => n.endsWith('.hwdb'));
      } catch {
        continue;
      }
      for (const name of names) if (!byName.has(name)) byName.set(name, join(dir, name));
    }
    const db = new Hwdb();
    for (const name of [...byName.keys()].sort()) db.add(readFileSync(byName.get(name) as string, 'utf8'), byName.get(name) as string);
    return db;
  }

  /** Adds one file's blocks: match lines, then indented KEY=value lines, a blank line between blocks. */
  add(text: string, file = 'text'): void {
    this.files.push(file);
    let patterns: string[] = [];
    let properties: string[] = [];
    const flush = (): void => {
      if (patterns.length > 0 && properties.length > 0) {
        const joined = properties.join('\n');
        for (const pattern of patterns) this.#index({ pattern, regex: undefined, properties: joined, order: this.#order++ });
      }
      patterns = [];
      properties = [];
    };
    for (const line of text.split('\n')) {
      if (line.startsWith('#')) continue;
      if (line.trim() === '') flush();
      else if (line.startsWith(' ')) properties.push(line.trim());
      else {
        if (properties.length > 0) flush();
        patterns.push(line.trimEnd());
      }
    }
    flush();
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
      entry.regex ??= fnmatchRegExp(entry.pattern);
      if (entry.regex.test(modalias)) matches.push(entry);
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

let shared: Hwdb | undefined;
/** The machine's hardware database, read on first use. */
export function machineHwdb(): Hwdb {
  shared ??= Hwdb.load();
  return shared;
}
/** For tests: use this database instead of the machine's. */
export function useHwdb(db: Hwdb | undefined): void {
  shared = db;
}

function usbModalias(view: { attribute(name: string): string | undefined }): string | undefined {
  const vendor = view.attribute('idVendor')?.trim();
  const product = view.attribute('idProduct')?.trim();
  if (!vendor || !product) return undefined;
  return `usb:v${vendor.toUpperCase()}p${product.toUpperCase()}:${view.attribute('product')?.trim() ?? ''}`;
}

export const hwdb: Builtin = {
  name: 'hwdb',
  summary: 'properties from the hardware database (hwdb.d), by modalias',
  run(argv, context) {
    let subsystem: string | undefined;
    let prefix = '';
    let filter: RegExp | undefined;
    let modalias: string | undefined;
    for (const arg of argv.slice(1)) {
      const option = /^--(subsystem|lookup-prefix|filter|device)=(.*)$/.exec(arg);
      if (option?.[1] === 'subsystem') subsystem = option[2];
      else if (option?.[1] === 'lookup-prefix') prefix = option[2] as string;
      else if (option?.[1] === 'filter') filter = fnmatchRegExp(option[2] as string);
      else if (option === null && !arg.startsWith('-')) modalias = arg;
    }
    const db = machineHwdb();
    const pick = (found: Record<string, string>) => Object.fromEntries(Object.entries(found).filter(([k]) => filter === undefined || filter.test(k)));
    if (modalias !== undefined) {
      const found = pick(db.lookup(prefix + modalias));
      return Object.keys(found).length > 0 ? { properties: found } : { failed: `hwdb: no entry for ${modalias}` };
    }
    for (const link of deviceChain(context)) {
      if (subsystem !== undefined && link.subsystem !== subsystem) continue;
      const alias = (link.view === context.device ? context.properties.MODALIAS : undefined) ?? link.view.properties().MODALIAS ?? (link.devtype === 'usb_device' ? usbModalias(link.view) : undefined);
      if (alias === undefined) continue;
      const found = pick(db.lookup(prefix + alias));
      if (Object.keys(found).length > 0) return { properties: found };
    }
    return { failed: 'hwdb: no entry for the device' };
  },
};
