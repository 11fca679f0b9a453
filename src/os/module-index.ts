// Which kernel modules a MODALIAS names, read in process as udevd's kmod builtin does (libkmod)
// instead of asking a modprobe process for every alias: most aliases of a board's devices name
// no module at all (a CPU, an ACPI processor, a hub's interface), or one already loaded, and a
// process per alias costs seconds on a slow CPU. Only an alias that names a module still to be
// loaded goes to modprobe (which then applies the blacklist, options and soft dependencies).
// Sources: modules.alias (depmod's), the aliases of built-in modules (modules.builtin.modinfo),
// `alias` lines of modprobe.d, and /sys/module for what is loaded.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { release } from 'node:os';
import { fnmatchTester } from '../text/fnmatch.js';

export const MODPROBE_CONF_DIRS = ['/etc/modprobe.d', '/run/modprobe.d', '/usr/local/lib/modprobe.d', '/usr/lib/modprobe.d', '/lib/modprobe.d'];

/** What loading an alias needs. */
export type AliasVerdict =
  /** No module has this alias: nothing to load (not a failure). */
  | { kind: 'none' }
  /** Every module it names is built in or loaded already. */
  | { kind: 'present'; modules: string[] }
  /** These are not loaded yet: modprobe loads them. */
  | { kind: 'load'; modules: string[] };

interface Entry {
  /** The normalised pattern; compiled on first use (most are never tested). */
  pattern: string;
  test?: (alias: string) => boolean;
  module: string;
}

/** libkmod's alias_normalize: `-` is `_` outside brackets. */
export function normaliseAlias(alias: string): string {
  if (!alias.includes('-')) return alias;
  let out = '';
  let inBrackets = false;
  for (const c of alias) {
    if (c === '[') inBrackets = true;
    else if (c === ']') inBrackets = false;
    out += c === '-' && !inBrackets ? '_' : c;
  }
  return out;
}

/** Module names as /sys/module has them: `-` is `_`. */
function moduleName(name: string): string {
  return name.replaceAll('-', '_');
}

/** A module's name from its path in modules.builtin or modules.dep (kernel/drivers/scsi/sg.ko → sg). */
function nameOfPath(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1).replace(/\.ko(\..*)?$/, '');
}

export class ModuleIndex {
  /** Patterns by their literal beginning (up to the first wildcard). */
  #byPrefix = new Map<string, Entry[]>();
  #builtin: Set<string>;
  /** Every module's own name (modules.dep): `kmod load sg` names a module, not an alias. */
  #names: Set<string>;
  #sysModule: string;

  constructor(aliases: Iterable<[pattern: string, module: string]>, builtin: Iterable<string>, sysModule = '/sys/module', names: Iterable<string> = []) {
    for (const [pattern, module] of aliases) {
      const normal = normaliseAlias(pattern);
      const wildcard = normal.search(/[*?[]/);
      const prefix = wildcard < 0 ? normal : normal.slice(0, wildcard);
      let bucket = this.#byPrefix.get(prefix);
      if (bucket === undefined) this.#byPrefix.set(prefix, (bucket = []));
      bucket.push(wildcard < 0 ? { pattern: normal, test: (alias) => alias === normal, module: moduleName(module) } : { pattern: normal, module: moduleName(module) });
    }
    this.#builtin = new Set([...builtin].map(moduleName));
    this.#names = new Set([...names].map(moduleName));
    this.#sysModule = sysModule;
  }

  /** The modules whose aliases match, each once, in the order found. */
  modulesFor(alias: string): string[] {
    const normal = normaliseAlias(alias);
    // As libkmod: a module's own name first, then the aliases.
    const name = moduleName(alias);
    if (this.#names.has(name) || this.#builtin.has(name)) return [name];
    const found: string[] = [];
    for (let length = 0; length <= normal.length; length++) {
      for (const entry of this.#byPrefix.get(normal.slice(0, length)) ?? []) {
        if (found.includes(entry.module)) continue;
        entry.test ??= fnmatchTester(entry.pattern);
        if (entry.test(normal)) found.push(entry.module);
      }
    }
    return found;
  }

  verdict(alias: string): AliasVerdict {
    const modules = this.modulesFor(alias);
    if (modules.length === 0) return { kind: 'none' };
    const missing = modules.filter((m) => !this.#builtin.has(m) && !existsSync(`${this.#sysModule}/${m}`));
    return missing.length === 0 ? { kind: 'present', modules } : { kind: 'load', modules: missing };
  }
}

/** `alias PATTERN MODULE` lines of a modules.alias or modprobe.d file. */
export function parseAliasLines(text: string): [string, string][] {
  const out: [string, string][] = [];
  // modules.alias has tens of thousands of lines: read with indexOf, not a split per line.
  for (let start = 0; start < text.length; ) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end).trim();
    start = end + 1;
    if (!line.startsWith('alias') || !/\s/.test(line[5] ?? '')) continue;
    const words = line.split(/\s+/);
    if (words.length >= 3) out.push([words[1] as string, words[2] as string]);
  }
  return out;
}

/** Built-in modules: names from modules.builtin and `name.alias=PATTERN` records of modules.builtin.modinfo. */
function builtinModules(dir: string): { names: string[]; aliases: [string, string][] } {
  const names = readFileSync(`${dir}/modules.builtin`, 'utf8').split('\n').filter(Boolean).map(nameOfPath);
  const aliases: [string, string][] = [];
  let modinfo = '';
  try {
    modinfo = readFileSync(`${dir}/modules.builtin.modinfo`, 'latin1');
  } catch {
    // older kernels have none
  }
  for (const record of modinfo.split('\0')) {
    const match = /^([^.]+)\.alias=(.+)$/.exec(record);
    if (match) aliases.push([match[2] as string, match[1] as string]);
  }
  return { names, aliases };
}

/**
 * The index of the running kernel's modules; undefined when its files cannot be read (no
 * /lib/modules for this kernel): every alias then goes to modprobe, as before.
 */
export function loadModuleIndex(dir = `/lib/modules/${release()}`, confDirs = MODPROBE_CONF_DIRS, sysModule = '/sys/module'): ModuleIndex | undefined {
  let aliases: [string, string][];
  let builtin: { names: string[]; aliases: [string, string][] };
  let names: string[];
  try {
    aliases = parseAliasLines(readFileSync(`${dir}/modules.alias`, 'utf8'));
    builtin = builtinModules(dir);
    names = readFileSync(`${dir}/modules.dep`, 'utf8').split('\n').map((line) => line.slice(0, line.indexOf(':'))).filter(Boolean).map(nameOfPath);
  } catch {
    return undefined;
  }
  for (const conf of confDirs) {
    let files: string[];
    try {
      files = readdirSync(conf).filter((n) => n.endsWith('.conf'));
    } catch {
      continue;
    }
    for (const name of files) {
      try {
        aliases.push(...parseAliasLines(readFileSync(`${conf}/${name}`, 'utf8')));
      } catch {
        // an unreadable file is modprobe's to report
      }
    }
  }
  return new ModuleIndex([...aliases, ...builtin.aliases], builtin.names, sysModule, names);
}

/**
 * The running kernel's index, read again when depmod has rewritten modules.alias (an `alias`
 * line added to modprobe.d later is seen after the next depmod or restart).
 */
export class KernelModules {
  #dir: string;
  #index: ModuleIndex | undefined;
  #mtimeMs = -1;

  constructor(dir = `/lib/modules/${release()}`) {
    this.#dir = dir;
  }

  current(): ModuleIndex | undefined {
    const mtimeMs = statSync(`${this.#dir}/modules.alias`, { throwIfNoEntry: false })?.mtimeMs ?? 0;
    if (mtimeMs !== this.#mtimeMs) {
      this.#mtimeMs = mtimeMs;
      this.#index = mtimeMs === 0 ? undefined : loadModuleIndex(this.#dir);
    }
    return this.#index;
  }
}
