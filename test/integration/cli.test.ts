// The command line as a user runs it: real processes, real files, real kernel events.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, DaemonProcess, Netns, canUseNamespaces, makeTempDir, waitFor } from '../helpers/netns.js';
import { buildFakeSysfs } from '../helpers/fake-sysfs.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

function hotplugd(...args: string[]) {
  const result = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('hotplugd command line', () => {
  it.each(['daemon', 'monitor', 'history', 'trigger'])('%s --help prints its usage', (command) => {
    const { code, stdout } = hotplugd(command, '--help');
    expect(code).toBe(0);
    expect(stdout).toMatch(new RegExp(`^Usage: hotplugd ${command}`));
  });

  it('lists the commands, and refuses an unknown one with exit status 2', () => {
    expect(hotplugd('--help').stdout).toMatch(/daemon .*\n.*monitor .*\n.*history .*\n.*info .*\n.*sessions .*\n.*trigger/);
    const unknown = hotplugd('frobnicate');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command "frobnicate"/);
  });

  it.each([
    [['daemon', '--log-level', 'loud'], /--log-level expects one of .*; got "loud"/],
    [['daemon', '--receive-buffer', '12X'], /--receive-buffer expects a size such as 65536, 512K or 16M/],
    [['history', '--limit', '0'], /--limit expects a positive integer, got "0"/],
    [['history', '--bogus'], /Unknown option '--bogus'[\s\S]*Try 'hotplugd history --help'/],
    [['trigger', '--action', 'explode'], /--action expects one of add, remove, change/],
    [['monitor', 'extra'], /unexpected argument "extra"[\s\S]*Try 'hotplugd monitor --help'/],
  ])('%j is a usage error that says what was expected', (args, message) => {
    const { code, stderr } = hotplugd(...args);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
  });

  it('history on a database that does not exist fails with the path in the message', () => {
    const dir = makeTempDir('cli');
    cleanups.push(() => dir.remove());
    const { code, stderr } = hotplugd('history', '--db', join(dir.path, 'missing.db'));
    expect(code).toBe(1);
    expect(stderr).toMatch(/Failed to open the history database .*missing\.db/);
  });

  it('trigger --dry-run lists the matching devices of a sysfs tree and writes nothing', () => {
    const fake = buildFakeSysfs({
      '/devices/virtual/net/lo': { _subsystem: 'net', uevent: 'INTERFACE=lo' },
      '/devices/virtual/tty/tty1': { _subsystem: 'tty', uevent: 'MAJOR=4\nMINOR=1\nDEVNAME=tty1' },
    });
    cleanups.push(() => fake.remove());
    const { code, stdout } = hotplugd('trigger', '--sysfs', fake.root, '--subsystem-match', 'n*', '--dry-run');
    expect(code).toBe(0);
    expect(stdout).toBe('/devices/virtual/net/lo\n');
  });
});

describe('hotplugd test shows hostile device strings escaped', () => {
  it('escapes control characters, keeps forged lines on their own line, and warns of a DEVNAME outside the dev root', () => {
    const temp = makeTempDir('hotplugd-test-escape-');
    cleanups.push(() => temp.remove());
    const dir = temp.path;
    mkdirSync(join(dir, 'rules'));
    writeFileSync(join(dir, 'rules', '50-serial.yaml'), 'rules:\n  - name: by-serial\n    match: { subsystem: tty, env: { ID_SERIAL: "?*" } }\n    set: { env: { SERIAL_COPY: "$env{ID_SERIAL}" } }\n');
    const event = {
      ACTION: 'add', DEVPATH: '/devices/virtual/tty/evil', SUBSYSTEM: 'tty', MAJOR: '4', MINOR: '99', DEVNAME: '../../tmp/pwned-node',
      ID_SERIAL: '\u001b[2J\u001b]0;owned\u0007\nS:../../../tmp/pwned5',
    };
    writeFileSync(join(dir, 'event.json'), JSON.stringify(event));
    const { code, stdout } = hotplugd('test', '--event', join(dir, 'event.json'), '--rules-dir', join(dir, 'rules'), '--dev', join(dir, 'dev'));
    expect(code).toBe(0);
    expect(stdout).toMatch(/match +by-serial/);
    expect(stdout).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f]/);
    expect(stdout.split('\n').filter((line) => /^\s*S:/.test(line))).toEqual([]);
    expect(stdout).toContain('SERIAL_COPY=\\x1b[2J\\x1b]0;owned\\x07\\x0aS:../../../tmp/pwned5');
    expect(stdout).toMatch(/warnings:\n.*DEVNAME "\.\.\/\.\.\/tmp\/pwned-node" leads outside/);
  });
});

describe('hotplugd test runs what udevadm test runs, and nothing else', () => {
  it('runs PROGRAM and IMPORT{program} (not RUN); --no-programs runs none', () => {
    const temp = makeTempDir('hotplugd-test-programs-');
    cleanups.push(() => temp.remove());
    const dir = temp.path;
    mkdirSync(join(dir, 'rules'));
    const marker = join(dir, 'run-was-here');
    writeFileSync(join(dir, 'rules', '50-programs.rules'), [
      'SUBSYSTEM=="net", PROGRAM="/bin/echo probed-value", RESULT=="probed-*", ENV{PROBED}="%c"',
      'SUBSYSTEM=="net", IMPORT{program}="/bin/echo IMPORTED=yes"',
      `SUBSYSTEM=="net", RUN+="/usr/bin/touch ${marker}"`,
      '',
    ].join('\n'));
    const args = ['test', '/sys/class/net/lo', '--rules-dir', join(dir, 'rules'), '--dev', join(dir, 'dev')];
    const ran = hotplugd(...args, '--json');
    expect(ran.code).toBe(0);
    const plan = JSON.parse(ran.stdout) as { properties: Record<string, string>; programs: { argv: string[]; ok: boolean }[]; run: { argv: string[] }[] };
    expect(plan.properties).toMatchObject({ PROBED: 'probed-value', IMPORTED: 'yes' });
    expect(plan.programs.map((p) => [p.argv[0], p.ok])).toEqual([['/bin/echo', true], ['/bin/echo', true]]);
    expect(plan.run.map((r) => r.argv)).toEqual([['/usr/bin/touch', marker]]);
    expect(existsSync(marker)).toBe(false);
    const text = hotplugd(...args);
    expect(text.stdout).toMatch(/import +\["\/bin\/echo","IMPORTED=yes"\] +\(ran, exit 0, \d+ ms\)/);
    expect(text.stdout).toMatch(/run +\["\/usr\/bin\/touch",.*\(not run in a dry run\)/);

    const pure = JSON.parse(hotplugd(...args, '--json', '--no-programs').stdout) as { properties: Record<string, string>; programs: unknown[] };
    expect(pure.properties.PROBED).toBeUndefined();
    expect(pure.properties.IMPORTED).toBeUndefined();
    expect(pure.programs).toEqual([]);
  });
});

describe.skipIf(!canUseNamespaces())('hotplugd command line with real kernel events', () => {
  it('monitor --json prints the kernel events of a namespace', async () => {
    const netns = new Netns('mon');
    cleanups.push(() => netns.delete());
    const monitor = spawn('ip', ['netns', 'exec', netns.name, process.execPath, CLI, 'monitor', '--json', '--subsystem', 'net'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    cleanups.push(() => monitor.kill('SIGKILL'));
    let output = '';
    monitor.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    // The monitor is listening once it has bound its socket; a bridge added too early is simply retried.
    await waitFor(() => {
      netns.ip('link', 'add', 'm0', 'type', 'bridge');
      // The add itself, not the remove of an earlier round that the monitor caught.
      const seen = output.split('\n').some((line) => line.includes('"devpath":"/devices/virtual/net/m0"') && line.includes('"action":"add"'));
      netns.ip('link', 'del', 'm0');
      return seen;
    }, 10_000, 'the monitor to print m0');
    monitor.kill('SIGTERM');
    const events = output.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    const add = events.find((e) => e.action === 'add' && e.devpath === '/devices/virtual/net/m0')!;
    expect(add).toMatchObject({ subsystem: 'net', source: 'kernel', properties: { ACTION: 'add', INTERFACE: 'm0' } });
    expect(typeof add.seqnum).toBe('number');
    // --subsystem net: the bridge's queues (subsystem "queues") are filtered out.
    expect(events.every((e) => e.subsystem === 'net')).toBe(true);
  });

  it('trigger sends real change events that the daemon records', async () => {
    const netns = new Netns('trig');
    cleanups.push(() => netns.delete());
    const dir = makeTempDir('trig');
    cleanups.push(() => dir.remove());
    const daemon = new DaemonProcess(netns, join(dir.path, 'h.db'), ['--no-coldplug']);
    cleanups.push(() => daemon.kill());
    await daemon.waitForLog('hotplugd started');
    const out = netns.run(process.execPath, CLI, 'trigger', '--subsystem-match', 'net', '--action', 'change');
    expect(out.split('\n')).toContain('/devices/virtual/net/lo');
    await waitFor(() => {
      const json = execFileSync(process.execPath, [CLI, 'history', '--db', daemon.dbPath, '--json'], { encoding: 'utf8' });
      return json.includes('"action":"change","devpath":"/devices/virtual/net/lo"');
    }, 10_000, 'the triggered event in the history');
    expect(await daemon.stop()).toBe(0);
  });
});
