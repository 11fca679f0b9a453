// The daemon carrying out plans: device nodes, links and programs, with a fake sysfs
// coldplugged and with real kernel events, each test in its own network namespace.
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openHistoryDb } from '../../src/history/db.js';
import { buildFakeSysfs } from '../helpers/fake-sysfs.js';
import { loadUeventFixtures } from '../helpers/fixtures.js';
import { execFileSync } from 'node:child_process';
import { CLI, DaemonProcess, Netns, canUseNamespaces, countEvents, makeTempDir, readHistory, waitFor } from '../helpers/netns.js';

const SHIPPED = join(import.meta.dirname, '..', '..', 'rules.d');
const SERIAL_USB = '/devices/pci0000:00/0000:00:08.1/0000:04:00.3/usb1/1-2/1-2.2';
const TTY = `${SERIAL_USB}/1-2.2:1.0/ttyUSB0/tty/ttyUSB0`;
// Writes its argv and environment to OUT_DIR/<pid>.json: what a program from a rule received
// (programs of different events run concurrently, so each writes its own file).
const RECORDER = `const fs=require('fs');` +
  `fs.writeFileSync(process.env.OUT_DIR+'/'+process.pid+'.json',JSON.stringify({argv:process.argv.slice(1),env:process.env,cwd:process.cwd()}))`;

interface ActionRow { kind: string; target: string; ok: number; error: string | null; exit_code: number | null; signal: string | null; timed_out: number | null; argv: string | null; rule: string | null }

function actions(dbPath: string): ActionRow[] {
  const db = openHistoryDb(dbPath, { readonly: true });
  try {
    return db.prepare('SELECT * FROM actions ORDER BY id').all() as ActionRow[];
  } catch {
    return [];
  } finally {
    db.close();
  }
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

function setup(prefix: string) {
  const netns = new Netns(prefix);
  cleanups.push(() => netns.delete());
  const dir = makeTempDir(prefix);
  cleanups.push(() => dir.remove());
  const rules = join(dir.path, 'rules.d');
  const out = join(dir.path, 'out');
  mkdirSync(rules);
  mkdirSync(out);
  return { netns, dir: dir.path, rules, out };
}

async function start(netns: Netns, dir: string, args: string[]): Promise<DaemonProcess> {
  const daemon = new DaemonProcess(netns, join(dir, 'history.db'), ['--no-watch', ...args]);
  cleanups.push(() => daemon.kill());
  await daemon.waitForLog('hotplugd started');
  return daemon;
}

describe.skipIf(!canUseNamespaces())('actions', () => {
  it('makes the node, owner/group/mode and links of a coldplugged USB serial adapter, and runs its program', async () => {
    const { netns, dir, rules, out } = setup('act-serial');
    const fixture = loadUeventFixtures().find((f) => f.scenario === 'usb-serial-ch340')!;
    const fake = buildFakeSysfs(fixture.sysfs!);
    cleanups.push(() => fake.remove());
    writeFileSync(join(fake.root, TTY, 'uevent'), 'MAJOR=188\nMINOR=0\nDEVNAME=ttyUSB0\n');
    writeFileSync(join(rules, '99-test.yaml'), `rules:
  - name: record-serial
    match: { action: add, subsystem: tty, kernel: "ttyUSB*" }
    set: { env: { OUT_DIR: ${JSON.stringify(out)} } }
    run: [[${JSON.stringify(process.execPath)}, "-e", ${JSON.stringify(RECORDER)}, "$devnode", "$env{ID_SERIAL}"]]
`);
    const daemon = await start(netns, dir, ['--sysfs', fake.root, '--rules-dir', rules, '--rules-dir', SHIPPED]);
    await waitFor(() => readdirSync(out).length === 1, 20_000, 'the program of the rule');
    await waitFor(() => actions(daemon.dbPath).some((a) => a.kind === 'program'), 20_000, 'the program recorded');
    expect(await daemon.stop()).toBe(0);

    const node = lstatSync(join(daemon.devRoot, 'ttyUSB0'));
    expect(node.isCharacterDevice()).toBe(true);
    expect([Math.floor(node.rdev / 256), node.rdev % 256]).toEqual([188, 0]);
    expect(node.mode & 0o7777).toBe(0o660);
    expect(node.gid).toBe(20); // dialout
    expect(readlinkSync(join(daemon.devRoot, 'serial/by-id/usb-1a86_7523-if00-port0'))).toBe('../../ttyUSB0');
    expect(readlinkSync(join(daemon.devRoot, 'serial/by-path/usb-1-2.2:1.0-port0'))).toBe('../../ttyUSB0');

    const seen = JSON.parse(readFileSync(join(out, readdirSync(out)[0]!), 'utf8')) as { argv: string[]; env: Record<string, string>; cwd: string };
    expect(seen.argv).toEqual([join(daemon.devRoot, 'ttyUSB0'), '1a86_7523']);
    expect(seen.env).toMatchObject({ ACTION: 'add', DEVPATH: TTY, ID_SERIAL: '1a86_7523', DEVLINKS: expect.stringContaining('serial/by-id') });
    expect(seen.cwd).toBe('/');
    const rows = actions(daemon.dbPath);
    expect(rows.filter((r) => r.kind !== 'program').map((r) => [r.kind, r.target.slice(daemon.devRoot.length), r.ok])).toEqual([
      ['node', '/ttyUSB0', 1],
      ['symlink', '/serial/by-id/usb-1a86_7523-if00-port0', 1],
      ['symlink', '/serial/by-path/usb-1-2.2:1.0-port0', 1],
    ]);
    expect(rows.find((r) => r.kind === 'program')).toMatchObject({ ok: 1, exit_code: 0, rule: expect.stringContaining('record-serial (') });
  });

  it('passes hostile interface names to programs as plain arguments, and records timeouts and crashes', async () => {
    const { netns, dir, rules, out } = setup('act-hostile');
    writeFileSync(join(rules, '10-test.yaml'), `rules:
  - name: record
    match: { action: add, subsystem: net, kernel: "!lo" }
    set: { env: { OUT_DIR: ${JSON.stringify(out)} } }
    run: [[${JSON.stringify(process.execPath)}, "-e", ${JSON.stringify(RECORDER)}, "$kernel", "$env{INTERFACE}"]]
  - name: hang
    match: { action: add, subsystem: net, kernel: slow0 }
    run: [{ argv: [${JSON.stringify(process.execPath)}, "-e", "setInterval(() => {}, 1000)"], timeout: 300ms }]
  - name: crash
    match: { action: add, subsystem: net, kernel: crash0 }
    run: [[${JSON.stringify(process.execPath)}, "-e", "process.exit(7)"]]
`);
    const daemon = await start(netns, dir, ['--no-coldplug', '--rules-dir', rules]);
    // The kernel accepts these interface names; a shell would run the commands in them.
    const hostile = ['h;id>hx', 'h`id`x', '$(id)'];
    hostile.forEach((name, i) => netns.ip('link', 'add', name, 'type', 'veth', 'peer', 'name', `peer${i}`));
    netns.ip('link', 'add', 'slow0', 'type', 'veth', 'peer', 'name', 'slow1');
    netns.ip('link', 'add', 'crash0', 'type', 'veth', 'peer', 'name', 'crash1');
    // A recorder for each of the ten interfaces, plus the hanging and the crashing program.
    await waitFor(() => actions(daemon.dbPath).filter((a) => a.kind === 'program').length >= 12, 20_000, 'twelve programs recorded');
    expect(await daemon.stop()).toBe(0);

    const received = readdirSync(out).map((f) => (JSON.parse(readFileSync(join(out, f), 'utf8')) as { argv: string[] }).argv);
    for (const name of hostile) expect(received).toContainEqual([name, name]);
    expect(existsSync('/hx')).toBe(false);
    const rows = actions(daemon.dbPath);
    expect(rows.find((r) => r.rule?.startsWith('hang '))).toMatchObject({ ok: 0, timed_out: 1, signal: 'SIGTERM', error: 'timed out after 300 ms' });
    expect(rows.find((r) => r.rule?.startsWith('crash '))).toMatchObject({ ok: 0, exit_code: 7, timed_out: 0, error: 'exit code 7' });
  });

  it('refuses a USB device that the default-deny example policy does not allow, and records it', async () => {
    const policy = readFileSync(join(import.meta.dirname, '..', '..', 'examples', 'usb-allowlist.yaml'), 'utf8');
    for (const allowCh340 of [false, true]) {
      const { netns, dir, rules } = setup(allowCh340 ? 'act-allow' : 'act-refuse');
      const fixture = loadUeventFixtures().find((f) => f.scenario === 'usb-serial-ch340')!;
      const fake = buildFakeSysfs(fixture.sysfs!);
      cleanups.push(() => fake.remove());
      writeFileSync(join(fake.root, SERIAL_USB, 'uevent'), 'DEVTYPE=usb_device\n');
      // The allowed run lists the CH340 in place of the example's FTDI adapter.
      writeFileSync(join(rules, '10-usb-allowlist.yaml'), allowCh340 ? policy.replace('idVendor: "0403", idProduct: "6001"', 'idVendor: "1a86", idProduct: "7523"') : policy);
      const daemon = await start(netns, dir, ['--sysfs', fake.root, '--rules-dir', rules]);
      await waitFor(() => countEvents(daemon.dbPath, "source = 'coldplug'") === fake.devices.length, 20_000, 'coldplug recorded');
      expect(await daemon.stop()).toBe(0);
      const authorized = readFileSync(join(fake.root, SERIAL_USB, 'authorized'), 'utf8').trim();
      const refusals = actions(daemon.dbPath).filter((a) => a.kind === 'refuse');
      if (allowCh340) {
        expect(authorized).toBe('1');
        expect(refusals).toEqual([]);
      } else {
        expect(authorized).toBe('0');
        expect(refusals).toEqual([expect.objectContaining({ target: SERIAL_USB, ok: 1, rule: expect.stringContaining('usb-refuse-the-rest (') })]);
      }
    }
  });

  it('on SIGTERM lets a short program finish and be recorded, and kills one that would not end at the stop timeout', async () => {
    const { netns, dir, rules, out } = setup('act-stop');
    const pidFile = join(out, 'hang.pid');
    const shortStarted = join(out, 'short.started');
    writeFileSync(join(rules, '10-test.yaml'), `rules:
  - name: short
    match: { action: add, subsystem: net, kernel: short0 }
    run: [[${JSON.stringify(process.execPath)}, "-e", ${JSON.stringify(`require('fs').writeFileSync(${JSON.stringify(shortStarted)}, ''); setTimeout(() => {}, 1000)`)}]]
  - name: endless
    match: { action: add, subsystem: net, kernel: endless0 }
    run: [{ argv: [${JSON.stringify(process.execPath)}, "-e", ${JSON.stringify(`require('fs').writeFileSync(${JSON.stringify(pidFile)}, String(process.pid)); process.on('SIGTERM', () => {}); setInterval(() => {}, 1000)`)}], timeout: 60m }]
`);
    const daemon = await start(netns, dir, ['--no-coldplug', '--rules-dir', rules, '--stop-timeout', '3s']);
    netns.ip('link', 'add', 'endless0', 'type', 'veth', 'peer', 'name', 'endless1');
    await waitFor(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8') !== '', 20_000, 'the endless program');
    netns.ip('link', 'add', 'short0', 'type', 'veth', 'peer', 'name', 'short1');
    await waitFor(() => existsSync(shortStarted), 20_000, 'the short program to start');
    const started = Date.now();
    expect(await daemon.stop()).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    const rows = actions(daemon.dbPath);
    expect(rows.find((a) => a.rule?.startsWith('short '))).toMatchObject({ ok: 1, exit_code: 0 });
    // The endless program was killed at the stop timeout, and its event still recorded.
    expect(rows.find((a) => a.rule?.startsWith('endless '))).toMatchObject({ ok: 0, signal: 'SIGKILL' });
    expect(countEvents(daemon.dbPath, "devpath = '/devices/virtual/net/endless0'")).toBe(1);
    expect(daemon.logs.some((l) => String(l.msg).startsWith('Stop timeout'))).toBe(true);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    await waitFor(() => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    }, 5000, 'the endless program to be gone');
  });

  it('runs import programs while the rules are evaluated, so later rules see their output', async () => {
    const { netns, dir, rules, out } = setup('act-import');
    writeFileSync(join(rules, '10-test.yaml'), `rules:
  - name: identify
    match: { action: add, subsystem: net, kernel: imp0 }
    run: [{ argv: [${JSON.stringify(process.execPath)}, "-e", "console.log('ID_MADE_BY=imports ' + process.env.INTERFACE)"], import: true }]
  - name: use-it
    match: { action: add, subsystem: net, env: { ID_MADE_BY: "imports imp0" } }
    set: { env: { OUT_DIR: ${JSON.stringify(out)} } }
    run: [[${JSON.stringify(process.execPath)}, "-e", ${JSON.stringify(RECORDER)}, "$env{ID_MADE_BY}", "$result{2}"]]
`);
    const daemon = await start(netns, dir, ['--no-coldplug', '--rules-dir', rules]);
    netns.ip('link', 'add', 'imp0', 'type', 'veth', 'peer', 'name', 'imp1');
    await waitFor(() => readdirSync(out).length === 1, 20_000, 'the program of the second rule');
    await waitFor(() => actions(daemon.dbPath).length === 2, 20_000, 'both programs recorded');
    expect(await daemon.stop()).toBe(0);
    const seen = JSON.parse(readFileSync(join(out, readdirSync(out)[0]!), 'utf8')) as { argv: string[]; env: Record<string, string> };
    expect(seen.argv).toEqual(['imports imp0', 'imp0']); // $result{2}: the second word of the output
    expect(seen.env.ID_MADE_BY).toBe('imports imp0');
    expect(actions(daemon.dbPath).map((a) => [a.rule?.split(' ')[0], a.ok])).toEqual([['identify', 1], ['use-it', 1]]);
  });

  it('supervises a job: started with its device, restarted when it dies, stopped on remove', async () => {
    const { netns, dir, rules, out } = setup('act-job');
    const pids = join(out, 'pids');
    const script = `require('fs').appendFileSync(${JSON.stringify(pids)}, process.pid + '\\n'); setInterval(() => {}, 1000)`;
    writeFileSync(join(rules, '10-test.yaml'), `rules:
  - name: keeper
    match: { action: add, subsystem: net, kernel: job0 }
    job: { argv: [${JSON.stringify(process.execPath)}, "-e", ${JSON.stringify(script)}], restart: on-failure }
`);
    const daemon = await start(netns, dir, ['--no-coldplug', '--rules-dir', rules]);
    const started = () => (existsSync(pids) ? readFileSync(pids, 'utf8').trim().split('\n').map(Number) : []);
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    netns.ip('link', 'add', 'job0', 'type', 'veth', 'peer', 'name', 'job1');
    await waitFor(() => started().length === 1, 20_000, 'the job to start');
    process.kill(started()[0]!, 'SIGKILL');
    await waitFor(() => started().length === 2, 20_000, 'the job to be restarted');
    const second = started()[1]!;
    expect(alive(second)).toBe(true);
    // `hotplugd status` shows the job, its pid and its restart.
    const status = JSON.parse(execFileSync(process.execPath, [CLI, 'status', '--json', '--control', daemon.controlPath], { encoding: 'utf8' })) as { jobs: { pid: number; restarts: number; state: string; devpath: string }[] };
    expect(status.jobs).toEqual([expect.objectContaining({ pid: second, restarts: 1, state: 'running', devpath: '/devices/virtual/net/job0' })]);
    netns.ip('link', 'del', 'job0');
    await waitFor(() => !alive(second), 20_000, 'the job to stop with its device');
    await waitFor(() => actions(daemon.dbPath).some((a) => a.kind === 'job-stop'), 20_000, 'the stop recorded');
    expect(await daemon.stop()).toBe(0);
    expect(actions(daemon.dbPath).map((a) => [a.kind, a.ok, a.error])).toEqual([
      ['job-start', 1, null],
      ['job-exit', 0, 'killed by SIGKILL'],
      ['job-start', 1, null],
      ['job-stop', 1, null],
    ]);
  });

  it('with --dry-run evaluates and logs what it would do, and does nothing', async () => {
    const { netns, dir, rules, out } = setup('act-dry');
    writeFileSync(join(rules, '10-test.yaml'), `rules:
  - name: would
    match: { action: add, subsystem: net, kernel: dry0 }
    set: { name: wet0, env: { OUT_DIR: ${JSON.stringify(out)} } }
    run: [[${JSON.stringify(process.execPath)}, "-e", ${JSON.stringify(RECORDER)}]]
    job: { argv: [${JSON.stringify(process.execPath)}, "-e", ${JSON.stringify(RECORDER)}] }
`);
    const daemon = await start(netns, dir, ['--no-coldplug', '--rules-dir', rules, '--dry-run']);
    netns.ip('link', 'add', 'dry0', 'type', 'veth', 'peer', 'name', 'dry1');
    const line = await daemon.waitForLog('Dry run: would act');
    expect(line).toMatchObject({ devpath: '/devices/virtual/net/dry0', name: 'wet0', run: [[process.execPath, '-e', RECORDER]], jobs: [[process.execPath, '-e', RECORDER]] });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await daemon.stop()).toBe(0);
    expect(readdirSync(out)).toEqual([]);
    expect(netns.ip('-o', 'link', 'show', 'dry0')).toContain('dry0');
    expect(actions(daemon.dbPath)).toEqual([]);
  });

  it('renames a network interface as a rule says, and records it', async () => {
    const { netns, dir, rules } = setup('act-rename');
    writeFileSync(join(rules, '10-test.yaml'), `rules:
  - name: name-lan
    match: { action: add, subsystem: net, kernel: "va*" }
    set: { name: "lan$number" }
`);
    const daemon = await start(netns, dir, ['--no-coldplug', '--rules-dir', rules]);
    netns.ip('link', 'add', 'va7', 'type', 'veth', 'peer', 'name', 'vb7');
    await waitFor(() => countEvents(daemon.dbPath, "action = 'move' AND devpath = '/devices/virtual/net/lan7'") === 1, 20_000, 'the move event of lan7');
    await waitFor(() => actions(daemon.dbPath).some((a) => a.kind === 'rename'), 20_000, 'the rename recorded');
    expect(await daemon.stop()).toBe(0);
    expect(netns.ip('-o', 'link', 'show', 'lan7')).toContain('lan7@vb7');
    expect(actions(daemon.dbPath).filter((a) => a.kind === 'rename')).toEqual([
      expect.objectContaining({ target: 'va7 -> lan7', ok: 1, exit_code: 0 }),
    ]);
  });

  it('keeps reading a storm while the events of one device wait for each other\'s programs, in SEQNUM order', async () => {
    const { netns, dir, rules } = setup('act-storm');
    writeFileSync(join(rules, '10-test.yaml'), `rules:
  - name: slow-program
    match: { action: change, subsystem: net, kernel: lo }
    run: [["/bin/sleep", "0.02"]]
`);
    const daemon = await start(netns, dir, ['--no-coldplug', '--rules-dir', rules, '--max-programs', '8']);
    const status = () => JSON.parse(execFileSync(process.execPath, [CLI, 'status', '--json', '--control', daemon.controlPath], { encoding: 'utf8' })) as { counters: Record<string, number> };
    netns.writeUevents('/sys/class/net/lo/uevent', 'change', 100);
    // All 100 were read at once; a device's events then run one after another (udev's rule).
    await waitFor(() => (status().counters.received ?? 0) >= 100, 10_000, '100 events read');
    expect(status().counters.processed).toBeLessThan(100);
    const lo = () => countEvents(daemon.dbPath, "devpath = '/devices/virtual/net/lo' AND action = 'change'");
    await waitFor(() => lo() === 100, 30_000, '100 recorded events');
    expect(await daemon.stop()).toBe(0);
    const rows = actions(daemon.dbPath);
    expect(rows).toHaveLength(100);
    expect(rows.every((a) => a.ok === 1)).toBe(true);
    const seqnums = readHistory(daemon.dbPath).filter((e) => e.devpath === '/devices/virtual/net/lo').map((e) => e.seqnum!);
    expect(seqnums).toEqual([...seqnums].sort((a, b) => a - b));
  }, 60_000);
});
