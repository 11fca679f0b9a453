// Rule directories (override, mask, order) and the linter, `hotplugd rules check`.
import { spawnSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadRules } from '../../src/frontends/load.js';
import { staticAccounts } from '../../src/os/accounts.js';
import { CLI, makeTempDir } from '../helpers/netns.js';

const accounts = staticAccounts({ root: 0 }, { root: 0 });
const temps: { remove(): void }[] = [];
afterEach(() => {
  for (const t of temps.splice(0)) t.remove();
});

/** Directories named high, mid, low holding the given files. */
function tree(files: Record<string, string>): string {
  const dir = makeTempDir('rules');
  temps.push(dir);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir.path, path, '..'), { recursive: true });
    writeFileSync(join(dir.path, path), text);
  }
  return dir.path;
}

const rule = (name: string, subsystem = 'net') => `rules:\n  - name: ${name}\n    match: { subsystem: ${subsystem} }\n`;

describe('loading rule directories', () => {
  it("leaves out files that step aside when udev's own rules are loaded, and only then", () => {
    const root = tree({
      'ours/50-usb-id.yaml': `beside-udev: step-aside\n${rule('usb-id')}`,
      'ours/90-hooks.yaml': `beside-udev: apply\n${rule('hooks')}`,
      'udev/60-persistent.rules': 'SUBSYSTEM=="net", ENV{FROM_UDEV}="1"\n',
      'mine/10-mine.rules': 'SUBSYSTEM=="net", ENV{MINE}="1"\n',
    });
    const udevDirs = [join(root, 'udev')];
    const beside = loadRules([join(root, 'ours'), join(root, 'udev')], { accounts, udevDirs });
    expect(beside.ok).toBe(true);
    expect(beside.ruleSet.rules.map((r) => r.name)).toEqual(['60-persistent.rules:1', 'hooks']);
    expect(beside.ruleSet.files.filter((f) => f.steppedAside).map((f) => f.path)).toEqual([join(root, 'ours/50-usb-id.yaml')]);
    // A .rules file of the user's own is not udev's rule set: the shipped file applies.
    const alone = loadRules([join(root, 'ours'), join(root, 'mine')], { accounts, udevDirs });
    expect(alone.ruleSet.rules.map((r) => r.name)).toEqual(['10-mine.rules:1', 'usb-id', 'hooks']);
    const bad = loadRules([join(tree({ 'x/1.yaml': `beside-udev: maybe\n${rule('x')}` }), 'x')], { accounts });
    expect(bad.diagnostics.map((d) => d.message)).toEqual(['"beside-udev" is "maybe": expected one of apply, step-aside']);
  });

  it('applies files in file-name order across directories; a higher directory overrides a name', () => {
    const root = tree({
      'high/20-b.yaml': rule('b-from-high'),
      'low/20-b.yaml': rule('b-from-low'),
      'low/10-a.yml': rule('a'),
      'mid/30-c.yaml': rule('c'),
      'mid/README.md': 'not a rule file',
      'low/.hidden.yaml': rule('hidden'),
    });
    const { ruleSet, ok } = loadRules([join(root, 'high'), join(root, 'mid'), join(root, 'low'), join(root, 'missing')], { accounts });
    expect(ok).toBe(true);
    expect(ruleSet.rules.map((r) => r.name)).toEqual(['a', 'b-from-high', 'c']);
    expect(ruleSet.files.find((f) => f.path.endsWith('high/20-b.yaml'))?.overrides).toEqual([join(root, 'low/20-b.yaml')]);
  });

  it('lets an empty file or a link to /dev/null mask a lower file', () => {
    const root = tree({ 'low/10-a.yaml': rule('a'), 'low/20-b.yaml': rule('b'), 'high/10-a.yaml': '' });
    symlinkSync('/dev/null', join(root, 'high/20-b.yaml'));
    const { ruleSet } = loadRules([join(root, 'high'), join(root, 'low')], { accounts });
    expect(ruleSet.rules).toEqual([]);
    expect(ruleSet.files.map((f) => f.masked)).toEqual([true, true]);
  });

  it('keeps the good rules of a file with errors, and says it is not ok', () => {
    const root = tree({ 'd/10.yaml': `${rule('good')}  - name: bad\n    match: { subsytem: net }\n` });
    const { ruleSet, ok, diagnostics } = loadRules([join(root, 'd')], { accounts });
    expect(ok).toBe(false);
    expect(ruleSet.rules.map((r) => r.name)).toEqual(['good']);
    expect(diagnostics[0]?.at).toEqual({ file: join(root, 'd/10.yaml'), line: 5, column: 14 });
  });
});

describe('hotplugd rules check', () => {
  const check = (...args: string[]) => spawnSync(process.execPath, [CLI, 'rules', 'check', ...args], { encoding: 'utf8' });

  it('exits 0 on clean files, 1 with file:line:column messages on errors', () => {
    const root = tree({ 'ok.yaml': rule('fine'), 'bad.yaml': 'rules:\n  - match: { subsytem: tty }\n    set: { mode: "999" }\n' });
    const clean = check(join(root, 'ok.yaml'));
    expect(clean.status).toBe(0);
    expect(clean.stderr).toBe('1 file, 1 rules loaded: 0 errors, 0 warnings\n');
    const bad = check(join(root, 'bad.yaml'));
    expect(bad.status).toBe(1);
    expect(bad.stdout.split('\n').filter(Boolean)).toEqual([
      `${root}/bad.yaml:2:14: error: unknown key "subsytem" in match (did you mean "subsystem"?)`,
      `${root}/bad.yaml:3:18: error: mode: expected an octal mode such as "0660", got "999" (quote it: mode: "0660")`,
    ]);
  });

  it('warns about rules that can never match, duplicate names and overridden files', () => {
    const root = tree({
      'etc/10-a.yaml': `${rule('dup')}  - name: never\n    match: { action: plug, kernel: "a/b" }\n`,
      'lib/10-a.yaml': rule('shadowed'),
      'lib/20-b.yaml': rule('dup'),
    });
    const result = check(join(root, 'etc'), join(root, 'lib'));
    expect(result.status).toBe(0);
    expect(result.stdout.split('\n').filter(Boolean)).toEqual([
      `${root}/etc/10-a.yaml:5:14: warning: rule "never" can never match: no event has the action plug (the kernel sends add, remove, change, move, online, offline, bind, unbind; network links give link-up, link-down, address-add, address-remove)`,
      `${root}/lib/20-b.yaml:2:5: warning: duplicate rule name "dup" (also at ${root}/etc/10-a.yaml:2) (names identify rules in traces and the history)`,
      `${root}/lib/10-a.yaml:1:1: warning: not used: overridden by ${root}/etc/10-a.yaml (a file named 10-a.yaml in a higher-priority directory replaces it)`,
    ]);
  });

  it('prints JSON with --json', () => {
    const root = tree({ 'bad.yaml': 'rules:\n  - set: { group: nosuchgroup }\n' });
    const result = check('--json', join(root, 'bad.yaml'));
    expect(result.status).toBe(1);
    expect(JSON.parse(result.stdout)).toContainEqual({
      file: `${root}/bad.yaml`, line: 2, column: 19, severity: 'error', message: 'unknown group "nosuchgroup" (not in /etc/group)', hint: null,
    });
  });

  it('is a usage error (2) for a missing path or subcommand', () => {
    expect(check('/no/such/file.yaml').status).toBe(2);
    const noSub = spawnSync(process.execPath, [CLI, 'rules'], { encoding: 'utf8' });
    expect(noSub.status).toBe(2);
    expect(noSub.stderr).toMatch(/expected a subcommand: check/);
  });
});

describe('rules and the daemon command line', () => {
  it('the daemon refuses to start with rule errors: exit 3, each problem logged with its place', () => {
    const root = tree({ 'rules/10-bad.yaml': 'rules:\n  - match: { subsytem: tty }\n' });
    const result = spawnSync(
      process.execPath,
      [CLI, 'daemon', '--rules-dir', join(root, 'rules'), '--db', join(root, 'h.db'), '--control', join(root, 'c.sock'), '--no-coldplug', '--log-format', 'json'],
      { encoding: 'utf8', timeout: 20_000 },
    );
    expect(result.status).toBe(3);
    const lines = result.stderr.trim().split('\n').map((l) => JSON.parse(l) as { msg: string; level: number });
    expect(lines.map((l) => l.msg)).toContain(`${root}/rules/10-bad.yaml:2:14: error: unknown key "subsytem" in match (did you mean "subsystem"?)`);
    expect(lines.at(-1)?.msg).toBe('hotplugd stopped');
  });

  it('hotplugd reload says when no daemon answers', () => {
    const root = tree({});
    const result = spawnSync(process.execPath, [CLI, 'reload', '--control', join(root, 'none.sock')], { encoding: 'utf8' });
    expect(result.status).toBe(1);
    expect(result.stderr).toBe(`Failed to reach hotplugd on ${root}/none.sock: is hotplugd running?\n`);
  });
});
