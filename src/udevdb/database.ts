// udev's database, written as udevd writes it, so `udevadm info` and libudev clients see
// what hotplugd's rules decided: /run/udev/data/<id> holds the symlinks (S:), the link
// priority (L:), when the device was first set up (I:), the properties rules added (E:)
// and the tags (G:, Q:); /run/udev/tags/<tag>/<id> lists the devices with each tag.
// It also answers the rules' own questions about earlier events (IMPORT{db}, IMPORT{parent}, TAGS).
import { mkdirSync, readdirSync, renameSync, rmdirSync, unlinkSync, writeFileSync } from 'node:fs';
import type { Plan } from '../rules/plan.js';
import type { DeviceDatabase } from '../rules/system-view.js';
import type { Uevent } from '../uevent/event.js';

// Kept out of E: lines: the kernel's own keys and the ones udev derives from S:/G: lines.
const NOT_STORED = new Set(['ACTION', 'DEVPATH', 'SUBSYSTEM', 'SEQNUM', 'DEVLINKS', 'TAGS', 'CURRENT_TAGS', 'USEC_INITIALIZED', 'DEVPATH_OLD']);

interface Entry {
  id: string;
  properties: Record<string, string>;
  tags: string[];
  initializedUsec: bigint;
}

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

export class UdevDatabase implements DeviceDatabase {
  readonly root: string;
  #entries = new Map<string, Entry>();

  /** `root` is udev's runtime directory, /run/udev. */
  constructor(root = '/run/udev') {
    this.root = root;
    mkdirSync(`${root}/data`, { recursive: true, mode: 0o755 });
    mkdirSync(`${root}/tags`, { recursive: true, mode: 0o755 });
  }

  properties(devpath: string): Readonly<Record<string, string>> | undefined {
    return this.#entries.get(devpath)?.properties;
  }

  tags(devpath: string): readonly string[] {
    return this.#entries.get(devpath)?.tags ?? [];
  }

  /** After an event's rules ran: records what they decided (or forgets the device on remove). */
  update(event: Uevent, plan: Plan | undefined): void {
    if (event.action === 'remove') {
      this.#forget(event.devpath);
      return;
    }
    if (plan === undefined) return;
    const before = this.#entries.get(event.devpath);
    const id = udevDeviceId(event);
    const added: Record<string, string> = {};
    for (const [key, value] of Object.entries(plan.properties)) {
      if (!NOT_STORED.has(key) && event.properties[key] !== value) added[key] = value;
    }
    // Tags stick (G: lines, /run/udev/tags) while the device stays; Q: lines are this event's.
    const sticky = before?.id === id ? [...new Set([...before.tags, ...plan.tags])] : [...plan.tags];
    const entry: Entry = { id, properties: added, tags: sticky, initializedUsec: before?.initializedUsec ?? monotonicUsec() };
    const lines = [
      ...plan.symlinks.map((link) => `S:${link.replace(/^.*?\/dev\//, '')}`),
      ...(plan.linkPriority !== 0 ? [`L:${plan.linkPriority}`] : []),
      `I:${entry.initializedUsec}`,
      ...Object.entries(added).map(([k, v]) => `E:${k}=${v.replace(/\n/g, ' ')}`),
      ...entry.tags.map((t) => `G:${t}`),
      ...plan.tags.map((t) => `Q:${t}`),
      'V:1',
    ];
    const path = `${this.root}/data/${id}`;
    writeFileSync(`${path}.tmp`, `${lines.join('\n')}\n`, { mode: 0o644 });
    renameSync(`${path}.tmp`, path);
    for (const tag of entry.tags) {
      mkdirSync(`${this.root}/tags/${tag}`, { recursive: true, mode: 0o755 });
      writeFileSync(`${this.root}/tags/${tag}/${id}`, '');
    }
    if (before) for (const tag of before.tags) if (!entry.tags.includes(tag) || before.id !== id) this.#untag(tag, before.id);
    if (before && before.id !== id) this.#unlink(`${this.root}/data/${before.id}`);
    this.#entries.set(event.devpath, entry);
  }

  #forget(devpath: string): void {
    const entry = this.#entries.get(devpath);
    if (entry === undefined) return;
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
