// A board bundle: everything a board with Node.js 20 needs to run hotplugd, for one
// architecture, with no compiler and no network there. DIR/hotplugd-VERSION-linux-ARCH.tar.gz
// holds hotplugd/: dist/, the production node_modules (JavaScript as npm installs it;
// better-sqlite3 compiled for ARCH, with Debian's cross compilers for arm64 and armv7), our
// addon's prebuild for ARCH, rules.d/, examples/, the systemd unit and INSTALL.
// Usage: npm run release -- --arch x64|arm64|armv7 --out DIR   (after npm run build)
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { elfHeader, TARGETS } from './prebuild.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// The bundle's name for each architecture, and node-gyp's.
const ARCHES = { x64: 'x64', arm64: 'arm64', armv7: 'arm' };

const usage = 'Usage: npm run release -- --arch x64|arm64|armv7 --out DIR';

function fail(message) {
  process.stderr.write(`release: ${message}\n${usage}\n`);
  process.exit(2);
}

const INSTALL = (version, arch) => `hotplugd ${version} for linux-${arch}

Needs Node.js 20 (20.5 or later) for this architecture; nothing else is fetched or built.

  tar -xzf hotplugd-${version}-linux-${arch}.tar.gz -C /opt      # gives /opt/hotplugd
  ln -s /opt/hotplugd/dist/cli/main.js /usr/local/bin/hotplugd
  hotplugd daemon --help
  node --max-semi-space-size=2 /opt/hotplugd/dist/cli/main.js daemon   # shipped rules.d/, history in /var/lib/hotplugd

As a service: copy systemd/hotplugd.service to /etc/systemd/system/ (its ExecStart is
/usr/local/bin/hotplugd, the link above), then systemctl enable --now hotplugd.

The kernel needs: CONFIG_NET (netlink: NETLINK_KOBJECT_UEVENT and NETLINK_ROUTE),
CONFIG_DEVTMPFS (mounted on /dev), CONFIG_INOTIFY_USER (rules directories are watched),
CONFIG_UNIX and sysfs on /sys. docs/boards.md in the source tells more.
`;

export function release(arch, out) {
  const gypArch = ARCHES[arch];
  const target = TARGETS[gypArch];
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  if (!existsSync(join(root, 'dist', 'cli', 'main.js'))) fail('no dist/: run npm run build first');
  const prebuilds = join(root, 'prebuilds', `linux-${gypArch}`);
  if (!existsSync(prebuilds)) fail(`no ${prebuilds}: run npm run build:addons first`);
  const stage = mkdtempSync(join(tmpdir(), 'hotplugd-release-'));
  try {
    const dir = join(stage, 'hotplugd');
    mkdirSync(dir);
    for (const name of ['package.json', 'package-lock.json', 'README.md', 'dist', 'rules.d', 'examples', 'systemd']) cpSync(join(root, name), join(dir, name), { recursive: true });
    cpSync(prebuilds, join(dir, 'prebuilds', `linux-${gypArch}`), { recursive: true });
    // The production dependencies as npm installs them, without their install scripts...
    execFileSync('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
    // ...and better-sqlite3, the one that is native, compiled for the board.
    const env = { ...process.env };
    if (target.cross) Object.assign(env, { CC: `${target.cross}-gcc`, CXX: `${target.cross}-g++`, LINK: `${target.cross}-g++`, AR: `${target.cross}-ar` });
    execFileSync('node-gyp', ['rebuild', '--release', `--arch=${gypArch}`], { cwd: join(dir, 'node_modules', 'better-sqlite3'), env, stdio: ['ignore', 'ignore', 'inherit'] });
    const sqlite = join(dir, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node');
    const header = elfHeader(sqlite);
    if (header?.machine !== target.machine || header.bits !== target.bits) throw new Error(`${sqlite} is not for ${arch}: ${JSON.stringify(header)}`);
    // What only a build needed.
    rmSync(join(dir, 'node_modules', 'better-sqlite3', 'build', 'Release', 'obj.target'), { recursive: true, force: true });
    rmSync(join(dir, 'node_modules', 'better-sqlite3', 'deps'), { recursive: true, force: true });
    rmSync(join(dir, 'node_modules', 'better-sqlite3', 'src'), { recursive: true, force: true });
    writeFileSync(join(dir, 'INSTALL'), INSTALL(pkg.version, arch));
    mkdirSync(out, { recursive: true });
    const file = join(out, `hotplugd-${pkg.version}-linux-${arch}.tar.gz`);
    execFileSync('tar', ['-czf', file, '--owner=0', '--group=0', '-C', stage, 'hotplugd']);
    return file;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { arch: { type: 'string' }, out: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  if (!values.arch || !(values.arch in ARCHES)) fail(`--arch: one of ${Object.keys(ARCHES).join(', ')}`);
  if (!values.out) fail('--out DIR: where the bundle goes');
  try {
    execFileSync('sh', ['-c', 'command -v node-gyp'], { stdio: 'ignore' });
  } catch {
    fail('node-gyp is not on the PATH: run this as `npm run release -- ...`');
  }
  console.log(release(values.arch, resolve(values.out)));
}
