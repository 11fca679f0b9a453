// Builds the native addon for the platforms the package ships prebuilt (prebuildify, N-API:
// one build serves every Node version from 20 on): linux x64 with the machine's compiler,
// arm64 and armv7 (hard float) with Debian's cross compilers (gcc-aarch64-linux-gnu,
// gcc-arm-linux-gnueabihf). Each lands in prebuilds/linux-ARCH/hotplugd.glibc[.armv7].node,
// where node-gyp-build finds it at install and at run time; a machine that matches none
// (musl, another architecture) builds from source. Every file is checked by its ELF header.
// Usage: npm run build:addons [-- --arch x64,arm64,arm]   (npm puts its node-gyp on the PATH)
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

// e_machine and ELF class of each target: what `file` would say, read from the header.
export const TARGETS = {
  x64: { machine: 62, bits: 64, cross: undefined },
  arm64: { machine: 183, bits: 64, cross: 'aarch64-linux-gnu' },
  arm: { machine: 40, bits: 32, cross: 'arm-linux-gnueabihf', armv: '7' },
};

/** The ELF class (32/64) and machine of a shared object; undefined when it is not ELF. */
export function elfHeader(path) {
  const header = Buffer.alloc(20);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, header, 0, 20, 0);
  } finally {
    closeSync(fd);
  }
  if (header.readUInt32BE(0) !== 0x7f454c46) return undefined;
  const little = header[5] === 1;
  return { bits: header[4] === 2 ? 64 : 32, machine: little ? header.readUInt16LE(18) : header.readUInt16BE(18) };
}

function build(arch) {
  const target = TARGETS[arch];
  const env = { ...process.env, PREBUILD_STRIP: '1' };
  const args = ['--napi', '--tag-libc', '--strip', '--arch', arch];
  if (target.cross) {
    const cc = `${target.cross}-gcc`;
    try {
      execFileSync('sh', ['-c', `command -v ${cc}`], { stdio: 'ignore' });
    } catch {
      throw new Error(`${cc} is missing: apt-get install gcc-${target.cross}`);
    }
    Object.assign(env, { CC: cc, CXX: cc, LINK: cc, AR: `${target.cross}-ar`, PREBUILD_STRIP_BIN: `${target.cross}-strip` });
  }
  if (target.armv) {
    env.PREBUILD_ARMV = target.armv;
    args.push('--tag-armv');
  }
  rmSync(join(root, 'prebuilds', `linux-${arch}`), { recursive: true, force: true });
  execFileSync(join(root, 'node_modules', '.bin', 'prebuildify'), args, { cwd: root, env, stdio: ['ignore', 'ignore', 'inherit'] });
  const dir = join(root, 'prebuilds', `linux-${arch}`);
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.node')) : [];
  if (files.length !== 1) throw new Error(`prebuildify left ${files.length} addons in ${dir}`);
  const header = elfHeader(join(dir, files[0]));
  if (header?.machine !== target.machine || header.bits !== target.bits) {
    throw new Error(`${dir}/${files[0]} is not a ${target.bits}-bit ${arch} shared object: ${JSON.stringify(header)}`);
  }
  return join('prebuilds', `linux-${arch}`, files[0]);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    execFileSync('sh', ['-c', 'command -v node-gyp'], { stdio: 'ignore' });
  } catch {
    throw new Error('node-gyp is not on the PATH: run this as `npm run build:addons`');
  }
  const { values } = parseArgs({ options: { arch: { type: 'string', default: Object.keys(TARGETS).join(',') } } });
  for (const arch of values.arch.split(',')) {
    if (!(arch in TARGETS)) throw new Error(`--arch: one of ${Object.keys(TARGETS).join(', ')}`);
    console.log(build(arch));
  }
  // prebuildify builds in build/: the machine's own build is made again for the tests.
  rmSync(join(root, 'build'), { recursive: true, force: true });
  execFileSync('node-gyp', ['rebuild'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
}
