// One USB scenario on a board in a box, run once under systemd-udevd and once under hotplugd,
// and what to compare of the two: udev's database as `udevadm info --export-db` shows it,
// the /dev tree (nodes, links, modes, owners) and the processed events a libudev listener
// hears (`udevadm monitor --udev --property`), removes included.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Board } from './board.js';

export type Daemon = 'udevd' | 'hotplugd';

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js');

/** Properties that differ from run to run whoever handles the event. */
const VOLATILE = new Set(['USEC_INITIALIZED', 'SEQNUM', 'SYNTH_UUID']);
/** Sets whose order is udevd's hash order: compared as sets. */
const UNORDERED: Record<string, string> = { DEVLINKS: ' ', TAGS: ':', CURRENT_TAGS: ':' };

/** A device the kernel names by a counter of its own: `…/input/input5`, `…/wakeup/wakeup13`. */
const COUNTED = /\/(input|wakeup)\/\1(\d+)(?=\/|$)/;

/**
 * Devpaths with the kernel's own counters taken out. Wakeup sources and input devices are
 * numbered in the order the kernel made them, whichever daemon runs (`…/1-4/wakeup/wakeup13` on
 * one boot, `wakeup14` on the next; a keyboard's `input5` or `input6`, as a probe that gave up
 * took a number or not): each is named by its rank among its siblings in the same run
 * (`…/input/input#1`, its LEDs `input#1::capslock`), so two of one parent stay two.
 */
export function comparableDevpaths(devpaths: Iterable<string>): (devpath: string) => string {
  const siblings = new Map<string, number[]>();
  for (const devpath of devpaths) {
    const match = COUNTED.exec(devpath);
    if (!match) continue;
    const parent = devpath.slice(0, match.index + match[1]!.length + 2);
    const numbers = siblings.get(parent) ?? [];
    if (!numbers.includes(Number(match[2]))) numbers.push(Number(match[2]));
    siblings.set(parent, numbers.sort((a, b) => a - b));
  }
  return (devpath) => {
    const match = COUNTED.exec(devpath);
    if (!match) return devpath;
    const [whole, kind, number] = match as unknown as [string, string, string];
    const parent = devpath.slice(0, match.index + kind.length + 2);
    const rank = (siblings.get(parent) ?? []).indexOf(Number(number)) + 1;
    const rest = devpath.slice(match.index + whole.length).replace(new RegExp(`/${kind}${number}(?=::)`, 'g'), `/${kind}#${rank}`);
    return `${parent}${kind}#${rank}${rest}`;
  };
}

function normalised(key: string, value: string, comparable: (devpath: string) => string): string {
  if (key === 'DEVPATH') return comparable(value);
  const separator = UNORDERED[key];
  if (separator === undefined) return value;
  const parts = value.split(separator).filter((p) => p !== '').sort();
  return separator === ':' ? `:${parts.join(':')}:` : parts.join(' ');
}

export interface DeviceRecord {
  devpath: string;
  node?: string;
  links: string[];
  properties: Record<string, string>;
}

export interface ProcessedEvent {
  action: string;
  /** As heard. */
  devpath: string;
  /** With the kernel's counters taken out (comparableDevpaths), as its DEVPATH property. */
  comparable: string;
  properties: Record<string, string>;
}

export interface Snapshot {
  /** udev's database: devpath → what `udevadm info` shows. */
  devices: Map<string, DeviceRecord>;
  /** /dev: path → "type mode uid:gid [→ target]". */
  dev: Map<string, string>;
}

/** `udevadm info --export-db` as records by devpath. */
export function parseExportDb(text: string): Map<string, DeviceRecord> {
  const devices = new Map<string, DeviceRecord>();
  const comparable = comparableDevpaths(text.split('\n').filter((l) => l.startsWith('P: ')).map((l) => l.slice(3)));
  for (const block of text.split('\n\n')) {
    let record: DeviceRecord | undefined;
    for (const line of block.split('\n')) {
      const kind = line.slice(0, 1);
      const value = line.slice(3);
      if (kind === 'P') devices.set(comparable(value), (record = { devpath: comparable(value), links: [], properties: {} }));
      else if (record === undefined) continue;
      else if (kind === 'N') record.node = value;
      else if (kind === 'S') record.links.push(value);
      else if (kind === 'E') {
        const eq = value.indexOf('=');
        const key = value.slice(0, eq);
        if (!VOLATILE.has(key)) record.properties[key] = normalised(key, value.slice(eq + 1), comparable);
      }
    }
    record?.links.sort();
  }
  return devices;
}

/** `udevadm monitor --udev --property` as events in the order heard. */
export function parseMonitor(text: string): ProcessedEvent[] {
  const events: ProcessedEvent[] = [];
  const comparable = comparableDevpaths(text.split('\n').filter((l) => l.startsWith('DEVPATH=')).map((l) => l.slice('DEVPATH='.length)));
  for (const block of text.split('\n\n')) {
    const lines = block.split('\n').filter((l) => l !== '');
    const header = lines.findIndex((l) => l.startsWith('UDEV  ['));
    if (header < 0) continue;
    const properties: Record<string, string> = {};
    for (const line of lines.slice(header + 1)) {
      const eq = line.indexOf('=');
      const key = line.slice(0, eq);
      if (eq > 0 && !VOLATILE.has(key)) properties[key] = normalised(key, line.slice(eq + 1), comparable);
    }
    // The devpath as heard; its DEVPATH property is the comparable one.
    const devpath = lines.find((l) => l.startsWith('DEVPATH='))?.slice('DEVPATH='.length) ?? '';
    events.push({ action: properties.ACTION ?? '', devpath, comparable: comparable(devpath), properties });
  }
  return events;
}

function parseDev(text: string): Map<string, string> {
  const dev = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const [path, type, target, mode, uid, gid] = line.split('|');
    dev.set(path!, `${type} ${mode} ${uid}:${gid}${type === 'l' ? ` → ${target}` : ''}`);
  }
  return dev;
}

/** Starts the daemon in the guest and waits until coldplug is settled; `udevadm monitor` then listens. */
export async function startDaemon(board: Board, daemon: Daemon): Promise<number> {
  const started = Date.now();
  const start =
    daemon === 'udevd'
      ? '/lib/systemd/systemd-udevd --daemon\nudevadm trigger --type=subsystems --action=add\nudevadm trigger --type=devices --action=add'
      : // As the README has it, with the history beside the run's files.
        `node ${CLI} daemon --udev --db /tmp/history.db --log-format json > /board/hotplugd.log 2>&1 &\nfor i in $(seq 1 600); do [ -S /run/udev/control ] && break; sleep 0.1; done`;
  await board.sh(`${start}\nudevadm settle -t 300\n(udevadm monitor --udev --property > /board/monitor.log 2>&1 &)\nsleep 1`, 400_000);
  return Date.now() - started;
}

export async function settle(board: Board): Promise<void> {
  // A plugged device's events come over some time (enumeration, then its drivers' modules).
  await board.sh('sleep 2; udevadm settle -t 120; sleep 1; udevadm settle -t 120', 200_000);
}

export async function snapshot(board: Board): Promise<Snapshot> {
  const db = await board.sh('udevadm info --export-db', 60_000);
  const dev = await board.sh("find /dev -path /dev/pts -prune -o -path /dev/shm -prune -o -path /dev/mqueue -prune -o -mindepth 1 -printf '%p|%y|%l|%m|%u|%g\\n' | sort", 60_000);
  return { devices: parseExportDb(db), dev: parseDev(dev) };
}

export function heard(board: Board): ProcessedEvent[] {
  return parseMonitor(readFileSync(join(board.dir, 'monitor.log'), 'utf8'));
}

/** The differences of two runs, one line each ("where: udevd's | hotplugd's"), for the devices whose devpath passes `only`. */
export function differences(udevd: Snapshot, hotplugd: Snapshot, only: (devpath: string) => boolean): string[] {
  const out: string[] = [];
  const devpaths = new Set([...udevd.devices.keys(), ...hotplugd.devices.keys()].filter(only));
  for (const devpath of [...devpaths].sort()) {
    const a = udevd.devices.get(devpath);
    const b = hotplugd.devices.get(devpath);
    if (!a || !b) {
      out.push(`${devpath}: ${a ? 'in udevd only' : 'in hotplugd only'}`);
      continue;
    }
    if (a.node !== b.node) out.push(`${devpath} node: ${a.node} | ${b.node}`);
    if (a.links.join(' ') !== b.links.join(' ')) out.push(`${devpath} links: ${a.links.join(' ')} | ${b.links.join(' ')}`);
    out.push(...propertyDifferences(devpath, a.properties, b.properties));
  }
  return out;
}

export function propertyDifferences(where: string, a: Record<string, string>, b: Record<string, string>): string[] {
  const out: string[] = [];
  for (const key of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
    if (a[key] !== b[key]) out.push(`${where} ${key}: ${a[key] ?? '(none)'} | ${b[key] ?? '(none)'}`);
  }
  return out;
}

/** /dev entries that differ (paths that pass `only`). */
export function devDifferences(udevd: Snapshot, hotplugd: Snapshot, only: (path: string) => boolean): string[] {
  const out: string[] = [];
  for (const path of [...new Set([...udevd.dev.keys(), ...hotplugd.dev.keys()])].filter(only).sort()) {
    const a = udevd.dev.get(path);
    const b = hotplugd.dev.get(path);
    if (a !== b) out.push(`${path}: ${a ?? '(none)'} | ${b ?? '(none)'}`);
  }
  return out;
}

/** Processed events compared in order per devpath and action (their interleaving across devices is the kernel's). */
export function eventDifferences(udevd: ProcessedEvent[], hotplugd: ProcessedEvent[], only: (devpath: string) => boolean): string[] {
  const group = (events: ProcessedEvent[]) => {
    const byKey = new Map<string, ProcessedEvent[]>();
    for (const e of events.filter((e) => only(e.devpath))) {
      const key = `${e.action} ${e.comparable}`;
      byKey.set(key, [...(byKey.get(key) ?? []), e]);
    }
    return byKey;
  };
  const a = group(udevd);
  const b = group(hotplugd);
  const out: string[] = [];
  for (const key of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const left = a.get(key) ?? [];
    const right = b.get(key) ?? [];
    if (left.length !== right.length) out.push(`${key}: heard ${left.length} times | ${right.length} times`);
    for (let i = 0; i < Math.min(left.length, right.length); i++) out.push(...propertyDifferences(`${key} #${i + 1}`, left[i]!.properties, right[i]!.properties));
  }
  return out;
}
