import { defaultDbPath, SYSFS_ROOT, DEV_ROOT } from '../defaults.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { openHistoryDb, type HistoryDb } from '../history/db.js';
import { usbDevicePath } from '../history/devices.js';
import { lastProcessed, newestDevpathNamed, queryEvents, resolveDevice, type HistoryRecord } from '../history/query.js';
import { linkState } from '../history/link-sessions.js';
import { resolveDeviceName } from '../uevent/device-names.js';
import { openFleetStore } from '../fleet/store.js';
import { boardDeviceInfo, type BoardDeviceInfo } from '../fleet/views.js';
import { HotplugError } from '../errors.js';
import { parseCommandLine, parsePositiveInt, usageError, type Command } from './args.js';
import { localTime, printable, writeLine } from './output.js';

const usage = `Usage: hotplugd info [options] (DEVPATH | /sys/PATH | /dev/NODE | NAME)

A device as hotplugd last processed it: its properties (the kernel's, with what
the rules set), symlinks and tags, the physical device it belongs to, and its
recent timeline; for a network interface, its link (carrier, addresses) as its
last link events told it. NAME is a kernel name such as sdb, ttyUSB0 or eth0. Works for
devices that are gone too, from the history.

Options:
  --limit N      events in the timeline (default: 20)
  --json         one JSON object: devpath, present, device, last, link, timeline
  --board NAME   the device as board NAME last forwarded it, from a collected
                 fleet database ('hotplugd collect --db'; give that as --db)
  --db PATH      history database (default: ${defaultDbPath()})
  --sysfs ROOT   sysfs root (default: /sys)
  --dev ROOT     where device nodes live (default: /dev)
  -h, --help     show this help`;

interface Resolved {
  devpath: string;
  present: boolean;
}

/** The devpath a user-given name means: from sysfs while present, else from the history. */
function resolve(db: HistoryDb, name: string, sysfsRoot: string, devRoot: string): Resolved | undefined {
  const live = name.startsWith('/dev/') || name.startsWith('/sys/') || name.startsWith('/devices/') || !name.includes('/');
  const devpath = (live ? resolveDeviceName(name, { sysfsRoot, devRoot }) : undefined) ?? newestDevpathNamed(db, name);
  return devpath === undefined ? undefined : { devpath, present: existsSync(join(sysfsRoot, devpath)) };
}

function timelineLine(r: HistoryRecord): string {
  const failed = r.actions.filter((a) => !a.ok).length;
  const actions = r.actions.length > 0 ? `  ${r.actions.length} action${r.actions.length > 1 ? 's' : ''}${failed ? ` (${failed} failed)` : ''}` : '';
  return `  ${localTime(r.received_at)}  ${r.action.padEnd(r.action.length > 7 ? 14 : 7)}  ${r.devname ?? r.devpath}${actions}`;
}

export const infoCommand: Command = {
  name: 'info',
  usage,
  async run(argv) {
    const parsed = parseCommandLine('info', usage, argv, {
      db: { type: 'string' },
      sysfs: { type: 'string' },
      dev: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'boolean' },
      board: { type: 'string' },
    });
    if (parsed === null) return 0;
    if (parsed.positionals.length !== 1) throw usageError('info', 'give one device: a devpath, /sys/..., /dev/NODE or a kernel name');
    const name = parsed.positionals[0]!;
    const limit = parsePositiveInt('info', 'limit', parsed.values.limit) ?? 20;
    if (parsed.values.board !== undefined) return boardInfo(parsed.values.board, parsed.values.db, name, limit, parsed.values.json === true);
    const db = openHistoryDb(parsed.values.db ?? defaultDbPath(), { readonly: true });
    try {
      const resolved = resolve(db, name, parsed.values.sysfs ?? SYSFS_ROOT, parsed.values.dev ?? DEV_ROOT);
      if (!resolved) throw new HotplugError('ENODEVICE', `hotplugd info: no device ${JSON.stringify(name)} in sysfs or in the history`);
      const { devpath, present } = resolved;
      const devices = resolveDevice(db, usbDevicePath(devpath) ?? devpath);
      const last = devices.length > 0 ? lastProcessed(db, devpath, devices) : undefined;
      const timeline = devices.length > 0 ? [...queryEvents(db, { deviceIds: devices.map((d) => d.id) }, { limit })] : [];
      const link = linkState(db, devpath);
      await printInfo({ devpath, device: devices[0] ?? null, last: last ?? null, link: link ?? null, timeline }, present, parsed.values.json === true);
    } finally {
      db.close();
    }
    return 0;
  },
};

async function boardInfo(board: string, dbPath: string | undefined, name: string, limit: number, json: boolean): Promise<number> {
  if (dbPath === undefined) throw usageError('info', '--board needs --db: the collected fleet database');
  const store = await openFleetStore(dbPath, { readonly: true });
  try {
    const info = await boardDeviceInfo(store, board, name, limit);
    if (!info) throw new HotplugError('ENODEVICE', `hotplugd info: board ${JSON.stringify(board)} forwarded no event of ${JSON.stringify(name)}`);
    await printInfo(info, undefined, json);
  } finally {
    await store.close();
  }
  return 0;
}

/** Prints what is known of a device; `present` is undefined for a board's device seen from a fleet database. */
async function printInfo(info: BoardDeviceInfo, present: boolean | undefined, json: boolean): Promise<void> {
  const { devpath, device, last, link, timeline } = info;
  if (json) {
    await writeLine(JSON.stringify({ devpath, ...(present === undefined ? {} : { present }), device, last, link, timeline }));
    return;
  }
  const out: string[] = [`devpath    ${devpath}${present === false ? '  (not present now)' : ''}`];
  if (device) {
    out.push(`device     ${device.key}${device.vendor || device.model ? `  (${[device.vendor, device.model].filter(Boolean).join(' ')})` : ''}`);
    out.push(`first seen ${localTime(new Date(device.first_seen).toISOString())}, last seen ${localTime(new Date(device.last_seen).toISOString())}`);
  }
  if (last) {
    out.push(`recorded   ${localTime(last.received_at)} (${last.action}, event ${last.id})`);
    out.push(`symlinks   ${last.symlinks.join(' ') || '-'}`, `tags       ${last.tags.join(' ') || '-'}`, `rules      ${last.rules.join(', ') || '-'}`);
    out.push('', 'properties:', ...Object.entries(last.properties).map(([k, v]) => `  ${k}=${v}`));
  } else {
    out.push('', 'No processed event for this devpath in the history.');
  }
  if (link) {
    const since = link.since ? ` since ${localTime(new Date(link.since).toISOString())}` : '';
    out.push('', `link       carrier ${link.carrier ? 'up' : 'down'}${since} (operstate ${link.operstate}, admin ${link.admin})`, `addresses  ${link.addresses.join(' ') || '-'}`);
  }
  if (timeline.length > 0) out.push('', `timeline of the device (newest ${timeline.length}):`, ...timeline.map(timelineLine));
  for (const line of out) await writeLine(printable(line));
}
