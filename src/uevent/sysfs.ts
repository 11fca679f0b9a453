// A read-only view of devices in a sysfs tree (`/sys`, or a fake root in tests).
// Sysfs lives in memory, so reads are synchronous: a read costs microseconds and
// keeps the event path free of promise overhead.
import { SYSFS_ROOT } from '../defaults.js';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, statfsSync } from 'node:fs';
import { constants } from 'node:os';
import { basename, join } from 'node:path';
import { systemCallsAddon } from '../os/native.js';
import { OpenAttributes } from './open-attributes.js';
import { createProperties, eventFromProperties, isSafeDevpath, type EventSource, type Properties, type Uevent } from './event.js';
import { HotplugError } from '../errors.js';

// What "not there" looks like: the device went away (ENOENT, ENOTDIR, ENODEV, ENXIO), or
// the attribute has no value to give (write-only: EACCES, EPERM; a show() that declines:
// EIO, EINVAL, ENODATA, EOPNOTSUPP, EBUSY — on this machine 400 power/autosuspend_delay_ms
// files answer EIO). Everything else (EMFILE, ENFILE, ENOMEM, ...) is a failure of the
// reader, not an answer about the device: it is thrown, so an evaluation fails loudly
// instead of a rule silently not matching.
const ABSENT_CODES = new Set(['ENOENT', 'ENOTDIR', 'ENODEV', 'ENXIO', 'EACCES', 'EPERM', 'EIO', 'EINVAL', 'ENODATA', 'EOPNOTSUPP', 'ENOTSUP', 'EBUSY']);

const { ELOOP, EFBIG, EISDIR } = constants.errno;
const ERRNO_NAMES = new Map(Object.entries(constants.errno).map(([name, number]) => [number, name]));
const ABSENT_ERRNOS = new Set([...ERRNO_NAMES].filter(([, name]) => ABSENT_CODES.has(name)).map(([errno]) => errno));

/** An error as Node's fs gives one, from an errno the addon returned. */
function errnoError(errno: number, path: string): NodeJS.ErrnoException {
  const code = ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
  return Object.assign(new Error(`${code}: ${path}`), { code, errno: -errno, path });
}

/** Undefined when the error means "absent"; throws an ESYSFS HotplugError otherwise. */
function absentOrThrow(error: unknown, path: string): undefined {
  const code = (error as NodeJS.ErrnoException).code;
  if (code !== undefined && ABSENT_CODES.has(code)) return undefined;
  throw new HotplugError('ESYSFS', `Failed to read ${path}: ${(error as Error).message}`, { cause: error });
}

/** Links that read as an attribute: their target's name. */
const LINK_ATTRIBUTES = new Set(['driver', 'subsystem', 'module']);

// Attribute files that block or have side effects when read.
const UNREADABLE_ATTRIBUTES = new Set(['remove', 'rescan', 'unbind', 'bind', 'new_id', 'remove_id']);

function isSafeAttributeName(name: string): boolean {
  return name !== '' && !name.startsWith('/') && !name.split('/').some((part) => part === '..' || part === '' || part === '.');
}

/** Parses the KEY=VALUE lines of a sysfs `uevent` file. */
export function parseUeventFile(text: string): Properties {
  const properties = createProperties();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) properties[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return properties;
}

/** Views of a device's ancestors shared across events (AncestorCache in ancestors.ts). */
export interface AncestorViews {
  /** The ancestors of `devpath` that are devices, nearest first. */
  of(devpath: string): DeviceView[];
}

// statfs(2)'s f_type of sysfs.
const SYSFS_MAGIC = 0x62656572;

function isSysfs(root: string): boolean {
  try {
    return statfsSync(root).type === SYSFS_MAGIC;
  } catch {
    return false;
  }
}

export class Sysfs {
  readonly root: string;

  #prefix: string;
  // Attributes kept open, on the real sysfs only (open-attributes.ts).
  #open: OpenAttributes | undefined;

  constructor(root = SYSFS_ROOT) {
    this.root = root;
    this.#prefix = root.replace(/\/+$/, '');
    this.#open = isSysfs(root) ? new OpenAttributes() : undefined;
  }

  // Paths are built by concatenation: devpaths and names are checked, and path.join's
  // normalisation costs more than the read it prepares on the event path.
  /** The filesystem path of a devpath, or null when the devpath could escape the root. */
  pathOf(devpath: string): string | null {
    return isSafeDevpath(devpath) ? this.#prefix + devpath : null;
  }

  /** True when the devpath names a device (a directory holding a `uevent` file). */
  exists(devpath: string): boolean {
    const path = this.pathOf(devpath);
    return path !== null && existsSync(`${path}/uevent`);
  }

  /** True while the devpath's directory exists (kobjects such as net queues have no uevent file). */
  hasDirectory(devpath: string): boolean {
    const path = this.pathOf(devpath);
    return path !== null && existsSync(path);
  }

  /** The properties of the device's `uevent` file, or undefined when it is gone. */
  readUevent(devpath: string): Properties | undefined {
    const text = this.#read(devpath, 'uevent');
    return text === undefined ? undefined : parseUeventFile(text);
  }

  /** The device's subsystem (the name its `subsystem` link points to). */
  subsystem(devpath: string): string | undefined {
    return this.#linkName(devpath, 'subsystem');
  }

  /** The bound driver's name (from the `driver` link). */
  driver(devpath: string): string | undefined {
    return this.#linkName(devpath, 'driver');
  }

  /**
   * An attribute's value with the trailing newline removed; undefined when absent or when
   * it has no value to read. Throws (ESYSFS) when the reader itself fails (EMFILE, ...).
   */
  attribute(devpath: string, name: string): string | undefined {
    if (!isSafeAttributeName(name) || UNREADABLE_ATTRIBUTES.has(basename(name))) return undefined;
    const text = this.#read(devpath, name);
    return text?.endsWith('\n') ? text.slice(0, -1) : text;
  }

  /** A binary attribute's bytes (USB `descriptors`); undefined when absent. */
  binaryAttribute(devpath: string, name: string): Buffer | undefined {
    if (!isSafeAttributeName(name) || UNREADABLE_ATTRIBUTES.has(basename(name))) return undefined;
    return this.#read(devpath, name, null);
  }

  /** The devpaths of the device's ancestors that are devices themselves, nearest first. */
  parents(devpath: string): string[] {
    const parents: string[] = [];
    for (let at = devpath.lastIndexOf('/'); at > 0; at = devpath.lastIndexOf('/', at - 1)) {
      const parent = devpath.slice(0, at);
      if (this.exists(parent)) parents.push(parent);
    }
    return parents;
  }

  /**
   * Every device under `/devices` that the kernel would send uevents for (it has a
   * subsystem), parents before children, in a stable order.
   */
  enumerate(): string[] {
    const devpaths: string[] = [];
    const walk = (devpath: string): void => {
      let entries;
      try {
        entries = readdirSync(join(this.root, devpath), { withFileTypes: true });
      } catch (error) {
        return absentOrThrow(error, join(this.root, devpath)); // vanished while we walked
      }
      entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      if (entries.some((e) => e.name === 'uevent' && e.isFile()) && entries.some((e) => e.name === 'subsystem')) {
        devpaths.push(devpath);
      }
      // Only real directories: the links (subsystem, driver, device, ...) would loop.
      for (const entry of entries) if (entry.isDirectory()) walk(`${devpath}/${entry.name}`);
    };
    walk('/devices');
    return devpaths;
  }

  /** The event the kernel would send for this device now, built from its `uevent` file. */
  synthesizeEvent(devpath: string, action: string, source: EventSource, receivedAt = Date.now()): Uevent | undefined {
    const path = this.pathOf(devpath);
    if (path === null) return undefined;
    // Both exist for nearly every device asked about (coldplug asks for each one the walk
    // found): read them at once, without the lstat that spares a missing file's exception.
    let text: string;
    let subsystem: string;
    try {
      text = readFileSync(`${path}/uevent`, 'utf8');
      subsystem = basename(readlinkSync(`${path}/subsystem`));
    } catch (error) {
      return absentOrThrow(error, path);
    }
    const fileProperties = parseUeventFile(text);
    const properties = createProperties();
    properties.ACTION = action;
    properties.DEVPATH = devpath;
    properties.SUBSYSTEM = subsystem;
    for (const [key, value] of Object.entries(fileProperties)) if (!(key in properties)) properties[key] = value;
    return eventFromProperties(properties, receivedAt, source);
  }

  /** The names in the device's directory (or a safe subdirectory of it); empty when it is gone. */
  list(devpath: string, subdirectory = ''): string[] {
    const path = this.pathOf(devpath);
    if (path === null || (subdirectory !== '' && !isSafeAttributeName(subdirectory))) return [];
    const dir = subdirectory === '' ? path : `${path}/${subdirectory}`;
    try {
      return readdirSync(dir).sort();
    } catch (error) {
      return absentOrThrow(error, dir) ?? [];
    }
  }

  /** True when `name` (relative to the device directory, no `..`) exists. */
  fileExists(devpath: string, name: string): boolean {
    const path = this.pathOf(devpath);
    return path !== null && isSafeAttributeName(name) && existsSync(`${path}/${name}`);
  }

  /**
   * A view of one device whose reads are cached for the life of the view (one event);
   * with AncestorViews, its parents' views are shared across events.
   */
  device(devpath: string, ancestors?: AncestorViews): DeviceView {
    return new DeviceView(this, devpath, ancestors);
  }

  // A missing file is the common case in parent walks; a thrown ENOENT costs about 20 µs.
  // Text is read by the addon in one open and one read, a missing file answered without an
  // exception; bytes (and text longer than a page) with an lstat first, which does not throw.
  #read(devpath: string, file: string): string | undefined;
  #read(devpath: string, file: string, encoding: null): Buffer | undefined;
  #read(devpath: string, file: string, encoding: 'utf8' | null = 'utf8'): string | Buffer | undefined {
    const path = this.pathOf(devpath);
    if (path === null) return undefined;
    const full = `${path}/${file}`;
    if (encoding !== null) {
      const text = this.#open === undefined ? systemCallsAddon().readAttribute(full) : this.#open.read(full);
      if (typeof text === 'string') return text;
      if (text === -ELOOP) return this.#linkAttribute(full, file);
      // No Error is made for an answer (ENOENT above all): that would cost more than the read.
      if (ABSENT_ERRNOS.has(-text) || text === -EISDIR) return undefined; // EISDIR: a group of attributes, not one
      if (text !== -EFBIG) return absentOrThrow(errnoError(-text, full), full);
    }
    try {
      const stat = lstatSync(full, { throwIfNoEntry: false });
      if (stat === undefined) return undefined;
      // As in udev, the links driver, subsystem and module read as their target's name; any
      // other link (device, firmware_node, ...) is no attribute at all, so ATTRS{device}
      // goes on to the parent whose file it is.
      if (stat.isSymbolicLink()) return LINK_ATTRIBUTES.has(file) && encoding !== null ? basename(readlinkSync(full)) : undefined;
      if (stat.isDirectory()) return undefined;
      return encoding === null ? readFileSync(full) : readFileSync(full, encoding);
    } catch (error) {
      return absentOrThrow(error, full);
    }
  }

  // As in udev, the links driver, subsystem and module read as their target's name; any other
  // link (device, firmware_node, ...) is no attribute at all.
  #linkAttribute(full: string, file: string): string | undefined {
    if (!LINK_ATTRIBUTES.has(file)) return undefined;
    try {
      return basename(readlinkSync(full));
    } catch (error) {
      return absentOrThrow(error, full);
    }
  }

  #linkName(devpath: string, link: string): string | undefined {
    const path = this.pathOf(devpath);
    if (path === null) return undefined;
    const full = `${path}/${link}`;
    try {
      if (lstatSync(full, { throwIfNoEntry: false }) === undefined) return undefined;
      return basename(readlinkSync(full));
    } catch (error) {
      return absentOrThrow(error, full);
    }
  }

}

/** One device as rules see it: lazily read, cached attributes and the chain of parents. */
export class DeviceView {
  readonly devpath: string;
  #sysfs: Sysfs;
  #attributes: Map<string, string | undefined> | undefined;
  #parents: DeviceView[] | undefined;
  #subsystem: string | undefined | null = null;
  #driver: string | undefined | null = null;
  #properties: Properties | undefined;
  #ancestors: AncestorViews | undefined;

  constructor(sysfs: Sysfs, devpath: string, ancestors?: AncestorViews) {
    this.#sysfs = sysfs;
    this.devpath = devpath;
    this.#ancestors = ancestors;
  }

  /** The kernel name; `!` in a sysfs name stands for `/` (block/cciss!c0d0 is /dev/cciss/c0d0). */
  get kernel(): string {
    return this.devpath.slice(this.devpath.lastIndexOf('/') + 1).replaceAll('!', '/');
  }

  get subsystem(): string | undefined {
    if (this.#subsystem === null) this.#subsystem = this.#sysfs.subsystem(this.devpath);
    return this.#subsystem;
  }

  get driver(): string | undefined {
    if (this.#driver === null) this.#driver = this.#sysfs.driver(this.devpath);
    return this.#driver;
  }

  attribute(name: string): string | undefined {
    this.#attributes ??= new Map();
    if (this.#attributes.has(name)) return this.#attributes.get(name);
    const value = this.#sysfs.attribute(this.devpath, name);
    this.#attributes.set(name, value);
    return value;
  }

  binaryAttribute(name: string): Buffer | undefined {
    return this.#sysfs.binaryAttribute(this.devpath, name);
  }

  /** The properties of the device's `uevent` file (empty when it is gone). */
  properties(): Properties {
    this.#properties ??= this.#sysfs.readUevent(this.devpath) ?? createProperties();
    return this.#properties;
  }

  /** The names in the device's directory, or in a subdirectory of it. */
  entries(subdirectory = ''): string[] {
    return this.#sysfs.list(this.devpath, subdirectory);
  }

  /** True when a file or directory exists at `name` inside the device directory. */
  fileExists(name: string): boolean {
    return this.#sysfs.fileExists(this.devpath, name);
  }

  /** Ancestors that are devices, nearest first. */
  parents(): DeviceView[] {
    this.#parents ??= this.#ancestors
      ? this.#ancestors.of(this.devpath)
      : this.#sysfs.parents(this.devpath).map((devpath) => new DeviceView(this.#sysfs, devpath));
    return this.#parents;
  }
}
