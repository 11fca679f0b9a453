// Runs systemd's udev rules test suite (../shared/conformance/udev-test) through hotplugd
// the way systemd's harness runs udev: for each case, the rules file; for each device, an
// add event from the fake sysfs tree with the node made as devtmpfs would (mode 0600),
// rules evaluated by the one engine (programs really run), and the plan carried out by
// the daemon's own executor into a temporary dev root; then the checks; then remove.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmdirSync, statSync, symlinkSync, unlinkSync } from 'node:fs';
import { makeNode } from '../../src/os/system-calls.js';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { ActionExecutor } from '../../src/actions/execute.js';
import { loadAccounts, type Accounts } from '../../src/os/accounts.js';
import { evaluate, type ImportRequest, type ImportResult } from '../../src/engine/evaluate.js';
import { RuleSet } from '../../src/rules/ruleset.js';
import { machineView, type DeviceDatabase } from '../../src/rules/system-view.js';
import { compileUdevRules } from '../../src/frontends/udev/compile.js';
import { Sysfs } from '../../src/uevent/sysfs.js';
import { SHARED } from '../helpers/fixtures.js';

export const SUITE = join(SHARED, 'conformance', 'udev-test');

export interface Device {
  devpath: string;
  checked_devnode: string;
  exp_links: string[] | null;
  not_exp_links: string[] | null;
  exp_perms: string | null;
  exp_major_minor: string | null;
}

export interface Case {
  id: string;
  desc: string;
  rules: string;
  devices: Device[];
  repeat: number;
  features: string[];
}

export function loadCases(): Case[] {
  return JSON.parse(readFileSync(join(SUITE, 'cases.json'), 'utf8')) as Case[];
}


/**
 * Copies the suite's sysfs tree to `target`. A copy that lost its symlinks (some archive
 * tools store a link as a file holding its target) gets them back: a one-line file with no
 * newline whose text is a path (or names an entry beside it) is a link. The count must match the
 * generator's, or the tree is not the suite's.
 */
export function prepareSysfs(target: string): string {
  const source = join(SUITE, 'sys');
  const sys = join(target, 'sys');
  cpSync(source, sys, { recursive: true, verbatimSymlinks: true });
  let links = 0;
  const walk = (dir: string): void => {
    for (const entry of readdirSync(join(source, dir), { withFileTypes: true })) {
      const rel = join(dir, entry.name);
      if (entry.isSymbolicLink()) links++;
      else if (entry.isDirectory()) walk(rel);
      else if (entry.isFile()) {
        const bytes = readFileSync(join(source, rel));
        const text = bytes.toString('latin1');
        if (bytes.length === 0 || bytes.length > 200 || /[\n\0]/.test(text) || !/^[\x20-\x7e]+$/.test(text)) continue;
        if (!text.includes('/') && !existsSync(resolve(join(source, dir), text))) continue;
        unlinkSync(join(sys, rel));
        symlinkSync(text, join(sys, rel));
        links++;
      }
    }
  };
  walk('');
  const meta = JSON.parse(readFileSync(join(SUITE, 'meta.json'), 'utf8')) as { sys_tree: { symlinks: number } };
  if (links !== meta.sys_tree.symlinks) throw new Error(`the sysfs tree has ${links} links, the suite's has ${meta.sys_tree.symlinks}`);
  return sys;
}

class MemoryDatabase implements DeviceDatabase {
  entries = new Map<string, { properties: Record<string, string>; tags: string[] }>();
  properties(devpath: string) {
    return this.entries.get(devpath)?.properties;
  }
  tags(devpath: string) {
    return this.entries.get(devpath)?.tags ?? [];
  }
}

function runProgram(request: ImportRequest): ImportResult {
  const result = spawnSync(request.argv[0] as string, request.argv.slice(1), { env: request.env, timeout: 10_000 });
  if (result.error || result.status !== 0) return undefined;
  return { stdout: result.stdout.toString('utf8'), raw: result.stdout };
}

function makedev(rdev: number): string {
  const big = BigInt(rdev);
  const major = ((big >> 8n) & 0xfffn) | ((big >> 32n) & ~0xfffn);
  const minor = (big & 0xffn) | ((big >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}

/** Removes now-empty directories from `path`'s parent up to (not including) the root. */
function removeEmptyParents(root: string, path: string): void {
  for (let dir = dirname(path); dir.startsWith(`${root}/`); dir = dirname(dir)) {
    try {
      if (readdirSync(dir).length > 0) return;
      rmdirSync(dir);
    } catch {
      return;
    }
  }
}

export class Harness {
  readonly sysfs: Sysfs;
  readonly system: ReturnType<typeof machineView>;
  readonly accounts: Accounts = loadAccounts();
  constructor(
    readonly devRoot: string,
    sysRoot: string,
  ) {
    this.sysfs = new Sysfs(sysRoot);
    this.system = machineView(sysRoot);
  }

  /** Runs one case; returns undefined when it passes, else why it failed. */
  run(c: Case): string | undefined {
    const { rules } = compileUdevRules(c.rules, 'udev-test.rules', this.accounts);
    const ruleSet = new RuleSet(rules);
    const executor = new ActionExecutor({ devRoot: this.devRoot, sysfs: this.sysfs });
    const database = new MemoryDatabase();
    try {
      for (let round = 0; round < (c.repeat ?? 1); round++) {
        for (const device of c.devices) this.#event(ruleSet, executor, database, device, 'add');
        for (const device of c.devices) {
          const failure = this.#checkAdd(device);
          if (failure) return `${device.checked_devnode}: ${failure}`;
        }
        for (const device of c.devices) this.#event(ruleSet, executor, database, device, 'remove');
        for (const device of c.devices) {
          const failure = this.#checkRemove(device);
          if (failure) return `${device.checked_devnode} after remove: ${failure}`;
        }
      }
      return undefined;
    } catch (error) {
      return `error: ${(error as Error).message}`;
    }
  }

  #event(ruleSet: RuleSet, executor: ActionExecutor, database: MemoryDatabase, device: Device, action: 'add' | 'remove'): void {
    const event = this.sysfs.synthesizeEvent(device.devpath, action, 'coldplug');
    if (event === undefined) throw new Error(`no device at ${device.devpath}`);
    const node = event.devname ? join(this.devRoot, event.devname) : undefined;
    if (action === 'add' && node !== undefined && event.major !== undefined && event.minor !== undefined && !existsSync(node)) {
      mkdirSync(dirname(node), { recursive: true });
      makeNode(node, event.subsystem === 'block', 0o600, event.major, event.minor);
    }
    // The rules see /dev (udev's $root, as in systemd's test, which mounts a tmpfs there);
    // nodes, links and programs' paths go to the temporary dev root that stands in for it.
    const inTempRoot = (path: string) => (path.startsWith('/dev/') ? join(this.devRoot, path.slice('/dev/'.length)) : path);
    const { plan } = evaluate(
      ruleSet,
      // The daemon's path: the rule index, and only matched rules traced.
      { event, device: this.sysfs.device(device.devpath), devRoot: '/dev', system: this.system, database, accounts: this.accounts, trace: 'matched' },
      (request) => runProgram({ ...request, argv: request.argv.map(inTempRoot) }),
    );
    executor.applyDevice(event, { ...plan, devnode: plan.devnode === null ? null : inTempRoot(plan.devnode), symlinks: plan.symlinks.map(inTempRoot) });
    if (action === 'add') database.entries.set(device.devpath, { properties: plan.properties, tags: plan.tags });
    else {
      database.entries.delete(device.devpath);
      if (node !== undefined && existsSync(node)) {
        unlinkSync(node);
        removeEmptyParents(this.devRoot, node);
      }
    }
  }

  #resolves(link: string, node: string): boolean {
    const path = isAbsolute(link) ? link : join(this.devRoot, link);
    const stat = lstatSync(path, { throwIfNoEntry: false });
    if (stat === undefined || !stat.isSymbolicLink()) return false;
    const target = statSync(path, { throwIfNoEntry: false });
    const nodeStat = statSync(node);
    return target !== undefined && target.ino === nodeStat.ino && target.dev === nodeStat.dev;
  }

  #checkAdd(device: Device): string | undefined {
    const node = join(this.devRoot, device.checked_devnode);
    const stat = lstatSync(node, { throwIfNoEntry: false });
    if (stat === undefined || !(stat.isBlockDevice() || stat.isCharacterDevice())) return 'the device node is missing';
    if (device.exp_perms) {
      const [user, group, mode] = device.exp_perms.split(':');
      const uid = user ? (this.accounts.user(user)?.id ?? Number(user)) : undefined;
      const gid = group ? (this.accounts.group(group)?.id ?? Number(group)) : undefined;
      if (uid !== undefined && stat.uid !== uid) return `owner ${stat.uid}, expected ${user}`;
      if (gid !== undefined && stat.gid !== gid) return `group ${stat.gid}, expected ${group}`;
      if (mode && (stat.mode & 0o7777) !== Number.parseInt(mode, 8)) return `mode ${(stat.mode & 0o7777).toString(8)}, expected ${mode}`;
    }
    if (device.exp_major_minor && makedev(stat.rdev) !== device.exp_major_minor) return `device number ${makedev(stat.rdev)}, expected ${device.exp_major_minor}`;
    for (const link of device.exp_links ?? []) if (!this.#resolves(link, node)) return `expected link ${link} to the node`;
    for (const link of device.not_exp_links ?? []) if (this.#resolves(link, node)) return `unexpected link ${link}`;
    return undefined;
  }

  #checkRemove(device: Device): string | undefined {
    if (existsSync(join(this.devRoot, device.checked_devnode))) return 'the node is still there';
    for (const link of device.exp_links ?? []) {
      if (lstatSync(join(this.devRoot, link), { throwIfNoEntry: false }) !== undefined) return `link ${link} is still there`;
    }
    return undefined;
  }
}

/** Pass rate per feature tag, as a Markdown table. */
export function featureReport(cases: Case[], failures: Map<string, string>): { rows: { tag: string; passed: number; total: number }[]; markdown: string } {
  const byTag = new Map<string, { passed: number; total: number }>();
  for (const c of cases) {
    for (const tag of c.features) {
      const entry = byTag.get(tag) ?? { passed: 0, total: 0 };
      entry.total++;
      if (!failures.has(c.id)) entry.passed++;
      byTag.set(tag, entry);
    }
  }
  const rows = [...byTag.entries()].map(([tag, v]) => ({ tag, ...v })).sort((a, b) => b.total - a.total || a.tag.localeCompare(b.tag));
  const markdown = ['| feature | passed | cases |', '| --- | --- | --- |', ...rows.map((r) => `| ${r.tag} | ${r.passed} | ${r.total} |`)].join('\n');
  return { rows, markdown };
}
