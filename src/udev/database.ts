// udev's database, written as udevd writes it, so `udevadm info` and libudev clients see
// what hotplugd's rules decided: /run/udev/data/<id> holds the symlinks (S:), the link
// priority (L:), when the device was first set up (I:), the properties rules added (E:)
// and the tags (G:, Q:); /run/udev/tags/<tag>/<id> lists the devices with each tag.
// It also answers the rules' own questions about earlier events (IMPORT{db}, IMPORT{parent},
// TAGS): from what this process wrote, else from the file as udevd reads it (a device
// processed before a restart, or by the daemon when a dry run asks).
import { UDEV_RUNTIME_DIR } from '../defaults.js';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, unlinkSync, writeFileSync } from 'node:fs';
import type { Plan } from '../rules/plan.js';
import type { DeviceDatabase } from '../rules/system-view.js';
import type { Uevent } from '../uevent/event.js';
import type { Sysfs } from '../uevent/sysfs.js';

// Kept out of E: lines: the kernel's own keys and the ones udev derives from S:/G: lines.
const NOT_STORED = new Set(['ACTION', 'DEVPATH', 'SUBSYSTEM', 'SEQNUM', 'DEVLINKS', 'TAGS', 'CURRENT_TAGS', 'USEC_INITIALIZED', 'DEVPATH_OLD']);

interface Entry {
  id: string;
  properties: Record<string, string>;
  tags: string[];
  /** Q: lines: the tags of the device's latest event. */
  currentTags: string[];
  /** S: lines, relative to the dev root. */
  links: string[];
  initializedUsec: bigint;
  /** The data file as this process last wrote it, and when it was last seen there (epoch ms). */
  text: string | undefined;
  seenAt: number | undefined;
}

// How long a device's unchanged file is trusted to be there before it is looked for again
// (udevadm info --cleanup-db deletes the files): a storm of events pays for a look once a second.
const RECHECK_MS = 1000;

/** udev's device id: b8:0 or c166:0 for device nodes, n3 for interfaces, +subsystem:name otherwise. */
export function udevDeviceId(event: Uevent): string {
  const p = event.properties;
  if (p.MAJOR !== undefined && p.MINOR !== undefined) return `${event.subsystem === 'block' ? 'b' : 'c'}${p.MAJOR}:${p.MINOR}`;
  if (p.IFINDEX !== undefined && /^\d+$/.test(p.IFINDEX)) return `n${p.IFINDEX}`;
  return `+${event.subsystem}:${event.devpath.slice(event.devpath.lastIndexOf('/') + 1)}`;
}

function monotonicUsec(): bigint {
  return process.hrtime.bigint() / 1000n;
}

/** A database file's E: properties, G: and Q: tags, S: links and I: set-up time. */
export function parseDatabaseFile(text: string): { properties: Record<string, string>; tags: string[]; currentTags: string[]; links: string[]; initializedUsec: bigint | undefined } {
  const properties: Record<string, string> = {};
  const tags: string[] = [];
  const currentTags: string[] = [];
  const links: string[] = [];
  let initializedUsec: bigint | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('E:')) {
      const eq = line.indexOf('=');
      if (eq > 2) properties[line.slice(2, eq)] = line.slice(eq + 1);
    } else if (line.startsWith('G:') && line.length > 2) tags.push(line.slice(2));
    else if (line.startsWith('Q:') && line.length > 2) currentTags.push(line.slice(2));
    else if (line.startsWith('S:') && line.length > 2) links.push(line.slice(2));
    else if (line.startsWith('I:') && /^\d+$/.test(line.slice(2))) initializedUsec = BigInt(line.slice(2));
  }
  return { properties, tags, currentTags, links, initializedUsec };
}

function listNames(dir: string): Set<string> {
  try {
    return new Set(readdirSync(dir));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return new Set();
    throw error;
  }
}

export interface UdevDatabaseOptions {
  /** Where a device's id is read for a file this process did not write (its dev, ifindex, subsystem). */
  sysfs?: Sysfs | undefined;
  /** Only read (a dry run): no directory is made, nothing written. */
  readOnly?: boolean;
}

export class UdevDatabase implements DeviceDatabase {
  readonly root: string;
  #entries = new Map<string, Entry>();
  /** Names in data/ when this process first looked: files an earlier run (or udevd) left. */
  #earlier: Set<string> | undefined;
  #options: UdevDatabaseOptions;

  /** `root` is udev's runtime directory, /run/udev. */
  constructor(root = UDEV_RUNTIME_DIR, options: UdevDatabaseOptions = {}) {
    this.root = root;
    this.#options = options;
    if (options.readOnly) return;
    mkdirSync(`${root}/data`, { recursive: true, mode: 0o755 });
    mkdirSync(`${root}/tags`, { recursive: true, mode: 0o755 });
  }

  properties(devpath: string, event?: Uevent): Readonly<Record<string, string>> | undefined {
    return this.#entry(devpath, event)?.properties;
  }

  tags(devpath: string, event?: Uevent): readonly string[] {
    return this.#entry(devpath, event)?.tags ?? [];
  }

  currentTags(devpath: string, event?: Uevent): readonly string[] {
    return this.#entry(devpath, event)?.currentTags ?? [];
  }

  links(devpath: string, event?: Uevent): readonly string[] {
    return this.#entry(devpath, event)?.links ?? [];
  }

  #entry(devpath: string, event?: Uevent): Entry | undefined {
    return this.#entries.get(devpath) ?? this.#load(devpath, event);
  }

  // The file of a device this process has not written yet, by the id udevd names it with: the
  // event's, or (a parent, say) the one its sysfs entry gives.
  #load(devpath: string, own: Uevent | undefined): Entry | undefined {
    const event = own ?? this.#options.sysfs?.synthesizeEvent(devpath, 'change', 'kernel');
    if (event === undefined) return undefined;
    const id = udevDeviceId(event);
    // Most devices have no file (all of them at coldplug): the directory is listed once, at the
    // first look, rather than a system call per event (each costs a millisecond on a board's slow
    // CPU). Files are written by this process only once it runs (udevd is not running beside it).
    this.#earlier ??= listNames(`${this.root}/data`);
    if (!this.#earlier.has(id)) return undefined;
    let text: string;
    try {
      text = readFileSync(`${this.root}/data/${id}`, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      this.#earlier.delete(id);
      return undefined;
    }
    const parsed = parseDatabaseFile(text);
    const entry: Entry = { id, properties: parsed.properties, tags: parsed.tags, currentTags: parsed.currentTags, links: parsed.links, initializedUsec: parsed.initializedUsec ?? monotonicUsec(), text: undefined, seenAt: undefined };
    this.#entries.set(devpath, entry);
    return entry;
  }

  /** After an event's rules ran: records what they decided (or forgets the device on remove). */
  update(event: Uevent, plan: Plan | undefined): void {
    if (this.#options.readOnly) return;
    if (event.action === 'remove') {
      this.#forget(event.devpath, udevDeviceId(event));
      return;
    }
    if (plan === undefined) return;
    const before = this.#entry(event.devpath, event);
    const id = udevDeviceId(event);
    const added: Record<string, string> = {};
    for (const [key, value] of Object.entries(plan.properties)) {
      // Hidden properties (ENV{.NAME}) live for the event only: udev never stores them.
      if (!NOT_STORED.has(key) && !key.startsWith('.') && event.properties[key] !== value) added[key] = value;
    }
    // Tags stick (G: lines, /run/udev/tags) while the device stays; Q: lines are this event's.
    const sticky = before?.id === id ? [...new Set([...before.tags, ...plan.tags])] : [...plan.tags];
    const links = plan.symlinks.map((link) => link.replace(/^.*?\/dev\//, ''));
    const initializedUsec = before?.initializedUsec ?? monotonicUsec();
    const lines = [
      ...links.map((link) => `S:${link}`),
      ...(plan.linkPriority !== 0 ? [`L:${plan.linkPriority}`] : []),
      `I:${initializedUsec}`,
      ...Object.entries(added).map(([k, v]) => `E:${k}=${v.replace(/\n/g, ' ')}`),
      ...sticky.map((t) => `G:${t}`),
      ...plan.tags.map((t) => `Q:${t}`),
      'V:1',
    ];
    const path = `${this.root}/data/${id}`;
    // A device whose file would not change (a storm of change events) is not written again,
    // unless the file went meanwhile (udevadm info --cleanup-db).
    const same = before?.id === id;
    const now = event.receivedAt;
    const trusted = same && before.seenAt !== undefined && now - before.seenAt < RECHECK_MS && now >= before.seenAt;
    // Made whole at once: one shape for every entry, so this stays optimised.
    const text = `${lines.join('\n')}\n`;
    const entry: Entry = { id, properties: added, tags: sticky, currentTags: [...plan.tags], links, initializedUsec, text, seenAt: trusted ? before.seenAt : now };
    if (!same || before.text !== text || (!trusted && !existsSync(path))) {
      writeFileSync(`${path}.tmp`, text, { mode: 0o644 });
      renameSync(`${path}.tmp`, path);
    }
    for (const tag of entry.tags) {
      const file = `${this.root}/tags/${tag}/${id}`;
      if (same && before.tags.includes(tag) && (trusted || existsSync(file))) continue;
      mkdirSync(`${this.root}/tags/${tag}`, { recursive: true, mode: 0o755 });
      writeFileSync(file, '');
    }
    if (before) for (const tag of before.tags) if (!entry.tags.includes(tag) || before.id !== id) this.#untag(tag, before.id);
    if (before && before.id !== id) this.#unlink(`${this.root}/data/${before.id}`);
    this.#entries.set(event.devpath, entry);
  }

  // A file left by an earlier run (not in memory) goes too, by the id the remove carries.
  #forget(devpath: string, id: string): void {
    const entry = this.#entries.get(devpath) ?? { id, tags: [] };
    this.#unlink(`${this.root}/data/${entry.id}`);
    for (const tag of entry.tags) this.#untag(tag, entry.id);
    this.#entries.delete(devpath);
  }

  #untag(tag: string, id: string): void {
    this.#unlink(`${this.root}/tags/${tag}/${id}`);
    try {
      if (readdirSync(`${this.root}/tags/${tag}`).length === 0) rmdirSync(`${this.root}/tags/${tag}`);
    } catch {
      // another process's tag directory, or gone already
    }
  }

  #unlink(path: string): void {
    try {
      unlinkSync(path);
    } catch {
      // already gone
    }
  }
}
