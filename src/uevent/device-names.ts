// How a user names a device, turned into its devpath, in one place for every command and
// the daemon's `wait`: a /dev node (through its major:minor), a /sys path or a path under
// the sysfs root (through the links to the device's directory), a devpath (/devices/...),
// a kernel name (sdb, ttyUSB0, eth0: looked up in /sys/class and /sys/block), or, for the
// history, any of those as text.
import { existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface DeviceRoots {
  sysfsRoot: string;
  devRoot: string;
}

/**
 * The devpath `name` means on this machine now, or undefined when it does not resolve (a
 * node or path that does not exist, or leads outside sysfs). A devpath is taken as it is,
 * present or not (the device may be about to appear).
 */
export function resolveDeviceName(name: string, roots: DeviceRoots): string | undefined {
  if (name.startsWith('/devices/')) return name;
  if (name.startsWith('/dev/')) return nodeDevpath(join(roots.devRoot, name.slice('/dev/'.length)), roots.sysfsRoot);
  if (name.startsWith(`${roots.sysfsRoot}/`)) return sysfsDevpath(name, roots.sysfsRoot);
  if (name.startsWith('/sys/')) return sysfsDevpath(join(roots.sysfsRoot, name.slice('/sys'.length)), roots.sysfsRoot);
  if (name !== '' && !name.includes('/')) return kernelNameDevpath(name, roots.sysfsRoot);
  // Any other path is taken under the sysfs root (class/net/eth0, /bus/usb/devices/1-1).
  return sysfsDevpath(join(roots.sysfsRoot, name), roots.sysfsRoot);
}

/** The name as the history knows it: a /sys path is a devpath there; anything else as given. */
export function historyName(text: string): string {
  return text.startsWith('/sys/') ? text.slice('/sys'.length) : text;
}

// A kernel name in the block class or any other class (the first that has it).
function kernelNameDevpath(name: string, sysfsRoot: string): string | undefined {
  if (name === '.' || name === '..') return undefined;
  const classDir = join(sysfsRoot, 'class');
  const classes = existsSync(classDir) ? readdirSync(classDir) : [];
  const found = [join(sysfsRoot, 'block', name), ...classes.map((c) => join(classDir, c, name))].find((p) => existsSync(p));
  return found === undefined ? undefined : sysfsDevpath(found, sysfsRoot);
}

function nodeDevpath(node: string, sysfsRoot: string): string | undefined {
  let stat;
  try {
    stat = statSync(node);
  } catch {
    return undefined;
  }
  if (!stat.isCharacterDevice() && !stat.isBlockDevice()) return undefined;
  const kind = stat.isBlockDevice() ? 'block' : 'char';
  // The split of dev_t glibc's major() and minor() make.
  const low = stat.rdev >>> 0;
  const high = Math.floor(stat.rdev / 2 ** 32);
  const major = (((low >>> 8) & 0xfff) | (high & 0xfffff000)) >>> 0;
  const minor = ((low & 0xff) | (((low >>> 12) | (high << 20)) & 0xffffff00)) >>> 0;
  return sysfsDevpath(join(sysfsRoot, 'dev', kind, `${major}:${minor}`), sysfsRoot);
}

function sysfsDevpath(path: string, sysfsRoot: string): string | undefined {
  if (!existsSync(path)) return undefined;
  const real = realpathSync(path);
  const root = realpathSync(sysfsRoot);
  return real.startsWith(`${root}/`) ? real.slice(root.length) : undefined;
}
