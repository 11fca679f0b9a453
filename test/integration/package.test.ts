// The npm package as a board integrator gets it: `npm pack`'s tarball holds the prebuilt addon
// for linux x64, arm64 and armv7 (checked by their ELF headers), installs into a prefix of its
// own without building the addon, and the installed `hotplugd` runs: help, the shipped rules
// checked, and the daemon recording a real interface in a network namespace.
// The prebuilds come from `npm run build:addons` (.ci/run runs it before the tests; it needs
// Debian's gcc-aarch64-linux-gnu and gcc-arm-linux-gnueabihf).
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { elfHeader, TARGETS } from '../../scripts/prebuild.mjs';
import { canUseNamespaces, Netns, waitFor } from '../helpers/netns.js';

const run = promisify(execFile);
const REPO = join(import.meta.dirname, '..', '..');
const cleanups: (() => void)[] = [];
afterAll(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

describe.skipIf(!canUseNamespaces())('the npm package', () => {
  it('packs the prebuilt addons, installs without building one, and runs from its prefix', async () => {
    for (const arch of Object.keys(TARGETS)) {
      expect(existsSync(join(REPO, 'prebuilds', `linux-${arch}`)), `prebuilds/linux-${arch}: run npm run build:addons first`).toBe(true);
    }
    const dir = mkdtempSync(join(tmpdir(), 'hotplugd-package-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    // dist/ and the prebuilds are there already (pretest, .ci/run): pack what they are.
    const { stdout: packed } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: REPO, maxBuffer: 64 * 1024 * 1024 });
    const { filename, files } = (JSON.parse(packed) as { filename: string; files: { path: string }[] }[])[0]!;
    const paths = files.map((f) => f.path);
    expect(paths).toEqual(expect.arrayContaining(['binding.gyp', 'native/addon.c', 'dist/cli/main.js', 'dist/cli/hotplugd.cjs', 'rules.d/50-usb-id.yaml', 'systemd/hotplugd.service']));
    expect(paths.filter((p) => p.startsWith('prebuilds/')).sort()).toEqual(['prebuilds/linux-arm/hotplugd.armv7.glibc.node', 'prebuilds/linux-arm64/hotplugd.glibc.node', 'prebuilds/linux-x64/hotplugd.glibc.node']);
    expect(paths.some((p) => p.startsWith('build/') || p.startsWith('src/') || p.startsWith('test/'))).toBe(false);

    // Unpacked, each prebuild is the architecture its directory says.
    const unpacked = join(dir, 'unpacked');
    await run('mkdir', ['-p', unpacked]);
    await run('tar', ['-xzf', join(dir, filename), '-C', unpacked]);
    for (const [arch, target] of Object.entries(TARGETS)) {
      const prebuilds = join(unpacked, 'package', 'prebuilds', `linux-${arch}`);
      const [file] = readdirSync(prebuilds);
      expect(elfHeader(join(prebuilds, file!)), arch).toEqual({ bits: target.bits, machine: target.machine });
    }

    // Installed as a user would (its dependencies from the registry, or npm's cache).
    const prefix = join(dir, 'prefix');
    await run('npm', ['install', '--global', '--prefix', prefix, '--no-audit', '--no-fund', join(dir, filename)], { maxBuffer: 64 * 1024 * 1024, timeout: 600_000 });
    const installed = join(prefix, 'lib', 'node_modules', 'hotplugd');
    expect(existsSync(join(installed, 'build')), 'the addon was built from source: no prebuild matched').toBe(false);
    const hotplugd = join(prefix, 'bin', 'hotplugd');
    const help = await run(hotplugd, ['--help']);
    expect(help.stdout).toMatch(/^Usage: hotplugd COMMAND/);
    const check = await run(hotplugd, ['rules', 'check']);
    expect(check.stdout + check.stderr).toMatch(/rules? .*loaded|no problems|OK/i);

    // The daemon from the prefix, its history in the temp dir: a veth added is recorded.
    const netns = new Netns('package');
    cleanups.push(() => netns.delete());
    const db = join(dir, 'history.db');
    const control = join(dir, 'control.sock');
    const daemon = spawn('ip', ['netns', 'exec', netns.name, hotplugd, 'daemon', '--db', db, '--control', control, '--no-watch'], { stdio: ['ignore', 'ignore', 'pipe'] });
    cleanups.push(() => daemon.kill('SIGKILL'));
    let log = '';
    daemon.stderr.setEncoding('utf8').on('data', (chunk: string) => (log += chunk));
    const exited = new Promise<number | null>((resolve) => daemon.once('exit', (code) => resolve(code)));
    await waitFor(() => log.includes('hotplugd started'), 20_000, `the installed daemon to start:\n${log}`);
    netns.ip('link', 'add', 'pk0', 'type', 'veth', 'peer', 'name', 'pk1');
    await run('ip', ['netns', 'exec', netns.name, hotplugd, 'settle', '--control', control, '--timeout', '20s']);
    const history = await run(hotplugd, ['history', '--json', '--db', db, '--action', 'add', '--subsystem', 'net']);
    expect(history.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { devpath: string }).devpath)).toEqual(expect.arrayContaining(['/devices/virtual/net/pk0']));
    daemon.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 900_000);
});
