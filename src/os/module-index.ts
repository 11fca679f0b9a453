// Which kernel modules a MODALIAS names, read in process as udevd's kmod builtin does (libkmod)
// instead of asking a modprobe process for every alias: most aliases of a board's devices name
// no module at all (a CPU, an ACPI processor, a hub's interface), or one already loaded, and a
// process per alias costs seconds on a slow CPU. Only an alias that names a module still to be
// loaded is loaded (kmod-loader.ts, or modprobe for what that leaves).
// Sources, in libkmod's order: `alias` lines of modprobe.d, module names (modules.dep),
// modules.alias, built-in modules and their aliases — depmod's binary indexes when present,
// else its text files — and /sys/module for what is loaded.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { release } from 'node:os';
import { fnmatchTester } from '../text/fnmatch.js';
import { type IndexValue, KmodIndex } from './kmod-index.js';

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
export function moduleName(name: string): string {
  return name.replaceAll('-', '_');
}

/** A module's name from its path in modules.builtin or modules.dep (kernel/drivers/scsi/sg.ko → sg). */
export function nameOfPath(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1).replace(/\.ko(\..*)?$/, '');
}

/** Which modules one source names for an alias (normalised) or a module name. */
export type ModuleSource = (alias: string, name: string) => readonly string[];

/** `alias PATTERN MODULE` pairs as a source, patterns kept by their literal beginning (up to the first wildcard). */
function aliasSource(aliases: Iterable<[pattern: string, module: string]>): ModuleSource {
  const byPrefix = new Map<string, Entry[]>();
  for (const [pattern, module] of aliases) {
    const normal = normaliseAlias(pattern);
    const wildcard = normal.search(/[*?[]/);
    const prefix = wildcard < 0 ? normal : normal.slice(0, wildcard);
    let bucket = byPrefix.get(prefix);
    if (bucket === undefined) byPrefix.set(prefix, (bucket = []));
    bucket.push(wildcard < 0 ? { pattern: normal, test: (alias) => alias === normal, module: moduleName(module) } : { pattern: normal, module: moduleName(module) });
  }
  return (normal) => {
    const found: string[] = [];
    for (let length = 0; length <= normal.length; length++) {
      for (const entry of byPrefix.get(normal.slice(0, length)) ?? []) {
        if (found.includes(entry.module)) continue;
        entry.test ??= fnmatchTester(entry.pattern);
        if (entry.test(normal)) found.push(entry.module);
      }
    }
    return found;
  };
}

/** Module names as a source: `kmod load sg` names a module, not an alias. */
function nameSource(names: Iterable<string>): ModuleSource {
  const set = new Set([...names].map(moduleName));
  return (_alias, name) => (set.has(name) ? [name] : []);
}

/** The sources in libkmod's order of lookup (the first that names any module answers). */
export interface ModuleSources {
  /** `alias` lines of modprobe.d. */
  config: ModuleSource;
  /** Loadable modules by name (modules.dep). */
  names: ModuleSource;
  /** modules.alias. */
  aliases: ModuleSource;
  /** Built-in modules by name (modules.builtin). */
  builtinNames: ModuleSource;
  /** Aliases of built-in modules (modules.builtin.modinfo or .alias.bin). */
  builtinAliases: ModuleSource;
  /** Whether a module is built in. */
  isBuiltin: (module: string) => boolean;
  /** A loadable module's file and dependencies (modules.dep). */
  dependencies: DependencyLookup;
}

export class ModuleIndex {
  #sources: ModuleSources;
  #sysModule: string;

  constructor(sources: ModuleSources, sysModule = '/sys/module') {
    this.#sources = sources;
    this.#sysModule = sysModule;
  }

  /** An index of given lists (aliases, built-in modules, loadable module names). */
  static of(aliases: Iterable<[pattern: string, module: string]>, builtin: Iterable<string>, sysModule = '/sys/module', names: Iterable<string> = []): ModuleIndex {
    const builtinNames = new Set([...builtin].map(moduleName));
    const none: ModuleSource = () => [];
    return new ModuleIndex({ config: none, names: nameSource(names), aliases: aliasSource(aliases), builtinNames: nameSource(builtinNames), builtinAliases: none, isBuiltin: (m) => builtinNames.has(m), dependencies: () => undefined }, sysModule);
  }

  /** The modules the alias names, each once, from the first source that names any (as libkmod). */
  modulesFor(alias: string): string[] {
    const normal = normaliseAlias(alias);
    const name = moduleName(alias);
    const s = this.#sources;
    for (const source of [s.config, s.names, s.aliases, s.builtinNames, s.builtinAliases]) {
      const found = source(normal, name);
      if (found.length > 0) return [...new Set(found)];
    }
    return [];
  }

  /** A loadable module's file and dependencies, from the same depmod files. */
  dependencies(module: string): { path: string; deps: string[] } | undefined {
    return this.#sources.dependencies(module);
  }

  verdict(alias: string): AliasVerdict {
    const modules = this.modulesFor(alias);
    if (modules.length === 0) return { kind: 'none' };
    const missing = modules.filter((m) => !this.#sources.isBuiltin(m) && !existsSync(`${this.#sysModule}/${m}`));
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
 * The text of modprobe.d's `.conf` files in modprobe's order: by name, a file of an earlier
 * directory hiding one of the same name in a later directory. An unreadable one is modprobe's
 * to report.
 */
export function readModprobeConf(confDirs: readonly string[]): string[] {
  const texts: string[] = [];
  const seen = new Set<string>();
  for (const dir of confDirs) {
    let files: string[];
    try {
      files = readdirSync(dir).filter((n) => n.endsWith('.conf')).sort();
    } catch {
      continue;
    }
    for (const file of files) {
      if (seen.has(file)) continue;
      seen.add(file);
      try {
        texts.push(readFileSync(`${dir}/${file}`, 'utf8'));
      } catch {
        // modprobe's to report
      }
    }
  }
  return texts;
}

/** A module's file and dependencies (in modules.dep's order, named as modules), as depmod recorded them. */
export type DependencyLookup = (module: string) => { path: string; deps: string[] } | undefined;

/** A modules.dep line (`kernel/a.ko: kernel/b.ko kernel/c.ko`), its paths from `dir`. */
function dependencyLine(dir: string, line: string): { path: string; deps: string[] } {
  const colon = line.indexOf(':');
  const path = line.slice(0, colon);
  return { path: path.startsWith('/') ? path : `${dir}/${path}`, deps: line.slice(colon + 1).split(' ').filter(Boolean).map((p) => moduleName(nameOfPath(p))) };
}

/** depmod's binary indexes, looked up per alias; undefined without modules.alias.bin and modules.dep.bin. */
function binarySources(dir: string): Omit<ModuleSources, 'config'> | undefined {
  const aliases = KmodIndex.open(`${dir}/modules.alias.bin`);
  const deps = KmodIndex.open(`${dir}/modules.dep.bin`);
  if (aliases === undefined || deps === undefined) return undefined;
  // Empty (0-byte) files when the kernel has no built-in modules of a kind.
  const builtin = KmodIndex.open(`${dir}/modules.builtin.bin`);
  const builtinAliases = KmodIndex.open(`${dir}/modules.builtin.alias.bin`);
  const values = (found: IndexValue[]) => found.map((v) => moduleName(v.value));
  const isBuiltin = (module: string) => builtin !== undefined && builtin.lookup(module).length > 0;
  return {
    names: (_alias, name) => (deps.lookup(name).length > 0 ? [name] : []),
    aliases: (alias) => values(aliases.searchWild(alias)),
    builtinNames: (_alias, name) => (isBuiltin(name) ? [name] : []),
    builtinAliases: builtinAliases === undefined ? () => [] : (alias) => values(builtinAliases.searchWild(alias)),
    isBuiltin,
    dependencies: (module) => {
      const line = deps.lookup(module)[0]?.value;
      return line === undefined ? undefined : dependencyLine(dir, line);
    },
  };
}

/** The text files (modules.alias, modules.dep, modules.builtin, .modinfo), parsed whole. */
function textSources(dir: string): Omit<ModuleSources, 'config'> {
  const aliases = parseAliasLines(readFileSync(`${dir}/modules.alias`, 'utf8'));
  const builtin = builtinModules(dir);
  const dependencies = new Map<string, { path: string; deps: string[] }>();
  for (const line of readFileSync(`${dir}/modules.dep`, 'utf8').split('\n')) {
    if (line.includes(':')) dependencies.set(moduleName(nameOfPath(line.slice(0, line.indexOf(':')))), dependencyLine(dir, line));
  }
  const builtinNames = new Set(builtin.names.map(moduleName));
  return {
    names: nameSource(dependencies.keys()),
    dependencies: (module) => dependencies.get(module),
    aliases: aliasSource(aliases),
    builtinNames: nameSource(builtinNames),
    builtinAliases: aliasSource(builtin.aliases),
    isBuiltin: (module) => builtinNames.has(module),
  };
}

/**
 * The index of the running kernel's modules, from depmod's binary indexes when it wrote them
 * (as libkmod), else its text files; undefined when neither can be read (no /lib/modules for
 * this kernel): every alias then goes to modprobe, as before.
 */
export function loadModuleIndex(dir = `/lib/modules/${release()}`, confDirs = MODPROBE_CONF_DIRS, sysModule = '/sys/module'): ModuleIndex | undefined {
  let sources: Omit<ModuleSources, 'config'>;
  try {
    sources = binarySources(dir) ?? textSources(dir);
  } catch {
    return undefined;
  }
  return new ModuleIndex({ config: aliasSource(readModprobeConf(confDirs).flatMap(parseAliasLines)), ...sources }, sysModule);
}

/**
 * The running kernel's index, read again when depmod has rewritten modules.alias (an `alias`
 * line added to modprobe.d later is seen after the next depmod or restart).
 */
const CHECK_EVERY_MS = 1000;

export class KernelModules {
  #dir: string;
  #index: ModuleIndex | undefined;
  #mtimeMs = -1;
  #checkedAt = -Infinity;

  #now: () => number;

  constructor(dir = `/lib/modules/${release()}`, now: () => number = Date.now) {
    this.#dir = dir;
    this.#now = now;
  }

  current(): ModuleIndex | undefined {
    // Looked at once a second at most: a storm of module loads does not stat per alias.
    const now = this.#now();
    if (now - this.#checkedAt < CHECK_EVERY_MS && now >= this.#checkedAt) return this.#index;
    this.#checkedAt = now;
    const mtime = (name: string) => statSync(`${this.#dir}/${name}`, { throwIfNoEntry: false })?.mtimeMs ?? 0;
    const mtimeMs = Math.max(mtime('modules.alias'), mtime('modules.alias.bin'));
    if (mtimeMs !== this.#mtimeMs) {
      this.#mtimeMs = mtimeMs;
      this.#index = mtimeMs === 0 ? undefined : loadModuleIndex(this.#dir);
    }
    return this.#index;
  }
}
