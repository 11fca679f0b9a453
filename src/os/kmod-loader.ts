// Kernel modules loaded in process, as udevd's kmod builtin loads them (libkmod's
// kmod_module_probe_insert_module with the blacklist applied): no modprobe process per
// alias (on a board's slow CPU each cost the daemon a fork of itself and modprobe its start).
// For each module asked for: the blacklist (modprobe.d, `modprobe.blacklist=` on the kernel's
// command line), then its dependencies from modules.dep in load order, each with its soft
// dependencies (modprobe.d's and depmod's modules.softdep), then its own `pre:` softdeps, the
// module, its `post:` softdeps; what is loaded or built in already is skipped; options from
// modprobe.d and the kernel command line (`module.param=value`). A module with an `install`
// command, a compressed file the kernel cannot decompress itself or no modules.dep entry is
// left to modprobe, which knows those.
import { existsSync, readFileSync } from 'node:fs';
import { constants } from 'node:os';
import { MODPROBE_CONF_DIRS, moduleName as name, readModprobeConf, type DependencyLookup, type ModuleIndex } from './module-index.js';

export interface ModprobeConfig {
  /** Option words per module. */
  options: Map<string, string[]>;
  softdeps: Map<string, { pre: string[]; post: string[] }>;
  blacklist: Set<string>;
  /** Modules with an `install` command (modprobe runs those). */
  commands: Set<string>;
}

export interface InsertStep {
  name: string;
  path: string;
  params: string;
  /** finit_module's flags: MODULE_INIT_COMPRESSED_FILE for a compressed file the kernel decompresses. */
  flags: number;
  /** Asked for, or a dependency of one: its failure is the load's (a soft dependency's is not). */
  required: boolean;
}

export type LoadPlan = { kind: 'insert'; steps: InsertStep[]; blacklisted: string[] } | { kind: 'modprobe'; why: string };

/** modprobe.d files' text (and depmod's modules.softdep) and the kernel's command line, read as libkmod reads them. */
export function parseModprobeConfig(texts: readonly string[], cmdline = ''): ModprobeConfig {
  const config: ModprobeConfig = { options: new Map(), softdeps: new Map(), blacklist: new Set(), commands: new Set() };
  const addOptions = (module: string, words: string[]) => config.options.set(module, [...(config.options.get(module) ?? []), ...words]);
  for (const text of texts) {
    for (const line of text.replace(/\\\n/g, ' ').split('\n')) {
      // As libkmod: a comment is a line of its own ('#' later in a line is the options' text).
      if (line.trimStart().startsWith('#')) continue;
      const words = line.trim().split(/\s+/);
      const [command, module] = [words[0], words[1] === undefined ? undefined : name(words[1])];
      if (module === undefined) continue;
      if (command === 'blacklist') config.blacklist.add(module);
      else if (command === 'install') config.commands.add(module);
      else if (command === 'options') addOptions(module, words.slice(2));
      else if (command === 'softdep') {
        const soft = config.softdeps.get(module) ?? { pre: [], post: [] };
        let into: string[] | undefined;
        for (const word of words.slice(2)) {
          if (word === 'pre:') into = soft.pre;
          else if (word === 'post:') into = soft.post;
          else into?.push(name(word));
        }
        config.softdeps.set(module, soft);
      }
    }
  }
  for (const word of cmdline.match(/(?:[^\s"]+|"[^"]*")+/g) ?? []) {
    const dot = word.indexOf('.');
    const eq = word.indexOf('=');
    if (dot <= 0 || (eq >= 0 && eq < dot)) continue;
    const module = name(word.slice(0, dot));
    if (module === 'modprobe' && word.startsWith('modprobe.blacklist=')) for (const m of word.slice(eq + 1).split(',')) config.blacklist.add(name(m));
    else if (/^[\w]+$/.test(module) && eq > dot + 1) addOptions(module, [word.slice(dot + 1)]);
  }
  return config;
}

/**
 * The modules to insert, in order, for `modules` (the alias's modules that are not loaded yet);
 * `present(m)`: m is loaded, coming, or built in.
 */
export function planInsert(modules: readonly string[], lookup: DependencyLookup, config: ModprobeConfig, present: (module: string) => boolean, decompresses = ''): LoadPlan {
  const steps: InsertStep[] = [];
  const blacklisted: string[] = [];
  const visited = new Set<string>();
  const listed = new Set<string>();
  let why: string | undefined;
  const add = (module: string, required: boolean) => {
    const entry = lookup(module);
    const compression = compressionOf(entry?.path ?? '');
    if (entry === undefined) why ??= `${module}: not in modules.dep`;
    else if (compression !== undefined && compression !== decompresses) why ??= `${module}: compressed (${entry.path})`;
    else if (config.commands.has(module)) why ??= `${module}: an install command`;
    else if (!listed.has(module) && !present(module)) {
      listed.add(module);
      steps.push({ name: module, path: entry.path, params: (config.options.get(module) ?? []).join(' '), flags: compression === undefined ? 0 : MODULE_INIT_COMPRESSED_FILE, required });
    }
  };
  // libkmod's __kmod_module_fill_softdep and __kmod_module_get_probe_list.
  const withSoftdeps = (module: string, required: boolean) => {
    const soft = config.softdeps.get(module);
    for (const pre of soft?.pre ?? []) probeList(pre, false);
    add(module, required);
    for (const post of soft?.post ?? []) probeList(post, false);
  };
  const probeList = (module: string, required: boolean) => {
    if (visited.has(module)) return;
    visited.add(module);
    // modules.dep lists what must be there before the module last-needed first.
    for (const dep of [...(lookup(module)?.deps ?? [])].reverse()) withSoftdeps(dep, required);
    withSoftdeps(module, required);
  };
  for (const module of modules) {
    if (config.blacklist.has(module)) blacklisted.push(module);
    else probeList(module, true);
  }
  return why === undefined ? { kind: 'insert', steps, blacklisted } : { kind: 'modprobe', why };
}

const MODULE_INIT_COMPRESSED_FILE = 4;
const COMPRESSIONS: Record<string, string> = { '.ko.xz': 'xz', '.ko.zst': 'zstd', '.ko.gz': 'gzip' };

/** A module file's compression as /sys/module/compression names it; undefined for a plain .ko. */
function compressionOf(path: string): string | undefined {
  const suffix = /\.ko(\.\w+)?$/.exec(path)?.[0];
  return suffix === undefined || suffix === '.ko' ? undefined : (COMPRESSIONS[suffix] ?? suffix);
}

const CONFIG_EVERY_MS = 1000;

/**
 * Reads what planInsert needs beside the module index (modprobe.d, modules.softdep, the command
 * line); inserts with `insert` (the addon's finit_module).
 */
export class KernelModuleLoader {
  #dir: string;
  #confDirs: readonly string[];
  #cmdline: string;
  #sysModule: string;
  #insert: (path: string, params: string, flags: number) => Promise<number>;
  #config: ModprobeConfig | undefined;
  #configAt = -Infinity;
  #decompresses: string | undefined;

  #now: () => number;

  constructor(options: { dir: string; insert: (path: string, params: string, flags: number) => Promise<number>; confDirs?: readonly string[]; cmdline?: string; sysModule?: string; now?: () => number }) {
    this.#now = options.now ?? Date.now;
    this.#dir = options.dir;
    this.#insert = options.insert;
    this.#confDirs = options.confDirs ?? MODPROBE_CONF_DIRS;
    this.#cmdline = options.cmdline ?? '/proc/cmdline';
    this.#sysModule = options.sysModule ?? '/sys/module';
  }

  /** The plan for `modules`, their files and dependencies from `index` (the same depmod files that named them). */
  plan(modules: readonly string[], index: ModuleIndex): LoadPlan {
    // The kernel decompresses modules of the kind it was built for (CONFIG_MODULE_DECOMPRESS).
    this.#decompresses ??= readOr(`${this.#sysModule}/compression`).trim();
    const lookup: DependencyLookup = (module) => index.dependencies(module);
    return planInsert(modules, lookup, this.#readConfig(), (module) => this.#present(module), this.#decompresses);
  }

  /** Inserts the plan's modules in order; the first required one that fails ends it (its errno). */
  async insert(steps: readonly InsertStep[]): Promise<{ inserted: string[]; failed?: { module: string; errno: number } }> {
    const inserted: string[] = [];
    for (const step of steps) {
      const result = await this.#insert(step.path, step.params, step.flags);
      if (result === 0) inserted.push(step.name);
      else if (result !== -constants.errno.EEXIST /* loaded meanwhile */ && step.required) return { inserted, failed: { module: step.name, errno: -result } };
    }
    return { inserted };
  }

  // libkmod's module_is_inkernel: live, coming, or built in (a /sys/module entry without initstate).
  #present(module: string): boolean {
    const dir = `${this.#sysModule}/${module}`;
    if (!existsSync(dir)) return false;
    const state = readOr(`${dir}/initstate`).trim();
    return state === '' || state === 'live' || state === 'coming';
  }

  // modprobe.d, modules.softdep and the command line, looked at once a second at most.
  #readConfig(): ModprobeConfig {
    const now = this.#now();
    if (this.#config !== undefined && now - this.#configAt < CONFIG_EVERY_MS && now >= this.#configAt) return this.#config;
    this.#config = parseModprobeConfig([...readModprobeConf(this.#confDirs), readOr(`${this.#dir}/modules.softdep`)], readOr(this.#cmdline));
    this.#configAt = now;
    return this.#config;
  }
}

function readOr(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
