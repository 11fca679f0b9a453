// What udev rules may look at outside the event's own device: files (TEST, IMPORT{file}),
// kernel parameters (SYSCTL), the kernel command line, constants, and other devices named
// as `[subsystem/sysname]`. Behind an interface so tests and dry runs choose what is visible.
import { PROC_ROOT, SYSFS_ROOT } from '../defaults.js';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { arch } from 'node:os';
import { detectVirtualization, type VirtFiles } from '../os/virt.js';
import type { Uevent } from '../uevent/event.js';

export interface SystemView {
  /** The file's type and permission bits (st_mode), or undefined when it does not exist. */
  mode(path: string): number | undefined;
  readFile(path: string): string | undefined;
  /** Entries of a directory, for TEST and ATTR paths with a `*` component. */
  list(path: string): string[];
  sysctl(name: string): string | undefined;
  cmdline(): string;
  constant(name: 'arch' | 'virt' | 'cvm'): string;
  /** The sysfs directory of `[subsystem/sysname]` (e.g. /sys/class/net/eth0), or undefined. */
  classDevice(subsystem: string, sysname: string): string | undefined;
  /** The sysfs mount (`/sys`, or a fake tree in tests). */
  readonly sysfsRoot: string;
}

/** Properties and tags recorded for devices at their last event (udev's database). */
export interface DeviceDatabase {
  // `event`: the device's own event, when the caller has it: the stored file is found by the
  // id it carries (not by reading sysfs again).
  properties(devpath: string, event?: Uevent): Readonly<Record<string, string>> | undefined;
  tags(devpath: string, event?: Uevent): readonly string[];
  /** The device's links (relative to the dev root) and its latest event's tags, as stored: a remove event carries them. */
  links?(devpath: string, event?: Uevent): readonly string[];
  currentTags?(devpath: string, event?: Uevent): readonly string[];
}

/** Sees nothing: for evaluations that must not read the machine. */
export const NO_SYSTEM: SystemView = {
  mode: () => undefined,
  readFile: () => undefined,
  list: () => [],
  sysctl: () => undefined,
  cmdline: () => '',
  constant: () => '',
  classDevice: () => undefined,
  sysfsRoot: SYSFS_ROOT,
};

const ARCHITECTURES: Record<string, string> = { x64: 'x86-64', ia32: 'x86', arm: 'arm', arm64: 'arm64', riscv64: 'riscv64', ppc64: 'ppc64', s390x: 's390x', mips: 'mips' };

function tryRead(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

export interface MachineOptions {
  /** The CPUID hypervisor signature (native code), for CONST{virt}; none when not given. */
  cpuidSignature?: () => string | null;
  /** Where /run and / are (a test tree); the machine's own by default. */
  root?: string;
}

/** Files as systemd-detect-virt reads them: /sys and /proc from the view's roots, the rest under `root`. */
export function virtFiles(sysfsRoot = SYSFS_ROOT, procRoot = PROC_ROOT, options: MachineOptions = {}): VirtFiles {
  const root = options.root ?? '';
  const where = (path: string) =>
    path.startsWith('/sys/') ? sysfsRoot + path.slice(4) : path.startsWith('/proc/') ? procRoot + path.slice(5) : root + path;
  return {
    read: (path) => tryRead(where(path)),
    line: (path) => tryRead(where(path))?.split('\n')[0]?.trim(),
    exists: (path) => existsSync(where(path)),
    cpuidSignature: options.cpuidSignature ?? (() => null),
    pid: process.pid,
    containerEnv: process.env.container,
  };
}

/** The running machine, with sysfs at `sysfsRoot` and kernel parameters under `procRoot`. */
export function machineView(sysfsRoot = SYSFS_ROOT, procRoot = PROC_ROOT, options: MachineOptions = {}): SystemView {
  let cmdline: string | undefined;
  let virt: string | undefined;
  return {
    sysfsRoot,
    mode(path) {
      try {
        return statSync(path, { throwIfNoEntry: false })?.mode;
      } catch {
        return undefined; // ENOTDIR, EACCES...: not there for a test
      }
    },
    readFile: tryRead,
    list(path) {
      try {
        return readdirSync(path);
      } catch {
        return [];
      }
    },
    sysctl(name) {
      const relative = name.replaceAll('.', '/');
      if (relative.split('/').includes('..')) return undefined;
      return tryRead(`${procRoot}/sys/${relative}`);
    },
    cmdline() {
      cmdline ??= tryRead(`${procRoot}/cmdline`)?.trim() ?? '';
      return cmdline;
    },
    constant(name) {
      if (name === 'arch') return ARCHITECTURES[arch()] ?? arch();
      if (name === 'virt') return (virt ??= detectVirtualization(virtFiles(sysfsRoot, procRoot, options)));
      return 'none';
    },
    classDevice(subsystem, sysname) {
      if (/[/]|^\.\.?$/.test(subsystem) || sysname.includes('/') || sysname === '..' || sysname === '.') return undefined;
      for (const dir of [`class/${subsystem}`, `bus/${subsystem}/devices`]) {
        const path = `${sysfsRoot}/${dir}/${sysname}`;
        if (statSync(path, { throwIfNoEntry: false }) !== undefined) return path;
      }
      return undefined;
    },
  };
}
