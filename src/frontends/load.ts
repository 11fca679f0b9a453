// Loading rule directories: a file in a higher-priority directory overrides the file
// of the same name in a lower one; the surviving files apply in file-name order.
import { lstatSync, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { UDEV_RULES_DIRS } from '../defaults.js';
import { loadAccounts, type Accounts } from '../os/accounts.js';
import type { Diagnostic, Rule } from '../rules/model.js';
import { compileMdevConf } from './mdev/compile.js';
import { RuleSet, type RuleFile } from '../rules/ruleset.js';
import { compileUdevRules } from './udev/compile.js';
import { compileParsedYaml } from './yaml.js';
import { parseYaml } from './yaml-nodes.js';
import type { RuleCache } from './rules-cache.js';

/** File name endings of rule files: hotplugd's YAML, udev's .rules, busybox's mdev.conf. */
export const RULE_FILE_EXTENSIONS = ['.yaml', '.yml', '.rules', 'mdev.conf'] as const;

/** udev's rule directories, highest priority first (a file overrides one of the same name below it). */

export type RuleFormat = 'yaml' | 'udev' | 'mdev';

/** The rule language of a file, by its name. */
export function ruleFormat(path: string): RuleFormat {
  if (path.endsWith('.rules')) return 'udev';
  if (path.endsWith('mdev.conf')) return 'mdev';
  return 'yaml';
}

export interface LoadResult {
  ruleSet: RuleSet;
  diagnostics: Diagnostic[];
  /** True when there is no error: a reload replaces the running set only then. */
  ok: boolean;
  /** Why the rule cache could not be written (the rules loaded all the same). */
  cacheError?: string;
}

function isRuleFile(name: string): boolean {
  return !name.startsWith('.') && RULE_FILE_EXTENSIONS.some((ext) => name.endsWith(ext));
}

// systemd's convention: an empty file or a link to /dev/null masks lower files of that name.
function isMask(path: string): boolean {
  try {
    if (lstatSync(path).isSymbolicLink() && readlinkSync(path) === '/dev/null') return true;
    return statSync(path).size === 0;
  } catch {
    return false;
  }
}

interface Candidate {
  path: string;
  overrides: string[];
}

/** The rule files of `dirs` (highest priority first), overrides applied, in file-name order. */
export function listRuleFiles(dirs: readonly string[]): Candidate[] {
  const byName = new Map<string, Candidate>();
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(dir).filter(isRuleFile);
    } catch {
      continue; // a missing directory is normal: /etc/hotplugd/rules.d is optional
    }
    for (const name of names) {
      const path = join(dir, name);
      const winner = byName.get(name);
      if (winner) winner.overrides.push(path);
      else byName.set(name, { path, overrides: [] });
    }
  }
  return [...byName.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, candidate]) => candidate);
}

/** Compiles one file; unreadable files are a diagnostic, not an exception. */
export function loadRuleFile(path: string, accounts: Accounts, cache?: RuleCache): { rules: Rule[]; diagnostics: Diagnostic[]; stepsAsideForUdev?: boolean } {
  const format = ruleFormat(path);
  // The file's identity is taken before it is read: a change while reading is seen next time.
  const cached = format === 'yaml' ? cache?.lookup(path) : undefined;
  if (cached?.parsed !== undefined) return compileParsedYaml(cached.parsed, path, accounts);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    return { rules: [], diagnostics: [{ severity: 'error', at: { file: path, line: 1, column: 1 }, message: `cannot read the file (${reason})` }] };
  }
  if (format === 'udev') return compileUdevRules(text, path, accounts);
  if (format === 'mdev') return compileMdevConf(text, path, accounts);
  const parsed = parseYaml(text);
  if (cached !== undefined) cache?.store(path, cached.identity, parsed);
  return compileParsedYaml(parsed, path, accounts);
}

export interface LoadOptions {
  accounts?: Accounts;
  /** Parsed YAML files kept between loads (rules-cache.ts). */
  cache?: RuleCache;
  /** udev's rule directories: a .rules file from one of them means udev's own rules are loaded. */
  udevDirs?: readonly string[];
}

/** Loads rule directories (highest priority first) into one set. */
export function loadRules(dirs: readonly string[], options: LoadOptions = {}): LoadResult {
  return loadRulePaths(listRuleFiles(dirs), options);
}

/** Loads directories (as one overriding set) followed by single files, e.g. for `hotplugd rules check`. */
export function loadRulesAndFiles(dirs: readonly string[], files: readonly string[], options: LoadOptions = {}): LoadResult {
  return loadRulePaths([...listRuleFiles(dirs), ...files.map((path) => ({ path, overrides: [] }))], options);
}

function loadRulePaths(candidates: Candidate[], options: LoadOptions): LoadResult {
  const accounts = options.accounts ?? loadAccounts();
  const rules: Rule[] = [];
  const files: RuleFile[] = [];
  const diagnostics: Diagnostic[] = [];
  // udev's own rules compute device identities, links, permissions and modules: files that
  // would compute them too (`beside-udev: step-aside`) leave it to them, so nothing differs.
  const udevDirs = options.udevDirs ?? UDEV_RULES_DIRS;
  const udevLoaded = candidates.some(({ path }) => ruleFormat(path) === 'udev' && udevDirs.includes(dirname(path)));
  for (const { path, overrides } of candidates) {
    if (isMask(path)) {
      files.push({ path, overrides, masked: true, rules: 0 });
      continue;
    }
    const result = loadRuleFile(path, accounts, options.cache);
    if (udevLoaded && result.stepsAsideForUdev && !result.diagnostics.some((d) => d.severity === 'error')) {
      files.push({ path, overrides, masked: false, rules: 0, steppedAside: true });
      continue;
    }
    rules.push(...result.rules);
    diagnostics.push(...result.diagnostics);
    files.push({ path, overrides, masked: false, rules: result.rules.length });
  }
  const cacheError = options.cache?.save();
  // udev and mdev drop a bad line and load the rest: such errors do not stop a (re)load.
  return {
    ruleSet: new RuleSet(rules, files),
    diagnostics,
    ok: !diagnostics.some((d) => d.severity === 'error' && !d.recovered),
    ...(cacheError === undefined ? {} : { cacheError }),
  };
}

