import { defaultDbPath } from '../defaults.js';
import { openHistoryDb } from '../history/db.js';
import { openFleetStore } from '../fleet/store.js';
import { boardSessions, resolveBoardDevice } from '../fleet/views.js';
import { resolveDevice, type DeviceRecord } from '../history/query.js';
import { devicesWithSessions, humanDuration, pairSessions, plugEvents, type Session } from '../history/sessions.js';
import { HotplugError } from '../errors.js';
import { parseCommandArgs, usageError, type Command } from './args.js';
import { printLinkSessions } from './link-sessions.js';
import { csvField, localTime, printable, writeLine } from './output.js';

const CSV_COLUMNS = ['device', 'port', 'plugged_at', 'unplugged_at', 'end_missed', 'present_at_start'] as const;

const usage = `Usage: hotplugd sessions [--device X] [--all] [--json | --csv] [--db PATH]
       hotplugd sessions --links [--interface NAME] [--json | --csv] [--db PATH]

Plug-in sessions per physical device: when it was first seen, how often it was
plugged, and each plug and unplug with the port and how long it stayed. A USB
device is recognised by vendor:product:serial, in whatever port it is plugged.
With --links: carrier sessions per network interface (link-up to link-down),
how long it had a carrier in all, and how often it flapped (carrier losses per
hour since its first recorded link event).

Options:
  --device X        one device (as in 'hotplugd history --device'); lists its sessions
  --all             include devices that are not USB (network interfaces, ...)
  --links           carrier sessions of network interfaces instead
  --interface NAME  with --links: one interface (e.g. eth0); lists its sessions
  --json            one JSON object per device or interface, with its sessions
  --csv             one line per session, with a header line (UTC, ISO 8601)
  --board NAME      one board's devices in a collected fleet database ('hotplugd
                    collect --db'; give that as --db); with --device, --all and
                    the output options
  --db PATH         history database (default: ${defaultDbPath()})
  -h, --help        show this help

An end the history does not know is shown as '?': the device was plugged before
the history began, or was unplugged while the daemon was not running.`;

function describeDevice(d: DeviceRecord): string {
  if (!d.key.startsWith('usb:')) return d.key;
  const name = [d.vendor, d.model].filter(Boolean).join(' ');
  return `USB ${d.vendor_id}:${d.product_id}${name ? ` ${name}` : ''}${d.serial ? ` serial ${d.serial}` : ' (no serial)'}`;
}

function summaryLine(device: DeviceRecord, sessions: Session[], now: number): string {
  const last = sessions[sessions.length - 1];
  let lastText = '';
  if (last) {
    const plugged = last.pluggedAt ?? device.first_seen;
    const still = last.unpluggedAt === null && !last.endMissed;
    const length = still ? `${humanDuration(now - plugged)} so far (no unplug recorded)` : last.unpluggedAt !== null && last.pluggedAt !== null ? `for ${humanDuration(last.unpluggedAt - last.pluggedAt)}` : 'for an unknown time';
    lastText = `, last on port ${last.port} ${length}`;
  }
  const plugs = sessions.filter((s) => s.pluggedAt !== null).length;
  return `${describeDevice(device)}: first seen ${localTime(new Date(device.first_seen).toISOString())}, plugged ${plugs} time${plugs === 1 ? '' : 's'}${lastText}`;
}

function sessionLine(s: Session, now: number): string {
  const at = (t: number | null) => (t === null ? '?'.padEnd(23) : localTime(new Date(t).toISOString()));
  const end = s.unpluggedAt !== null ? at(s.unpluggedAt) : s.endMissed ? '? (unplug not recorded)' : 'still plugged';
  const length = s.pluggedAt !== null && s.unpluggedAt !== null ? humanDuration(s.unpluggedAt - s.pluggedAt) : s.pluggedAt !== null && !s.endMissed && s.unpluggedAt === null ? `${humanDuration(now - s.pluggedAt)} so far` : '?';
  return `  ${at(s.pluggedAt)}${s.presentAtStart ? '*' : ' '} → ${end.padEnd(23)}  ${length.padEnd(16)}  port ${s.port}`;
}

export const sessionsCommand: Command = {
  name: 'sessions',
  usage,
  async run(argv) {
    const values = parseCommandArgs('sessions', usage, argv, {
      db: { type: 'string' },
      device: { type: 'string' },
      all: { type: 'boolean' },
      links: { type: 'boolean' },
      interface: { type: 'string' },
      json: { type: 'boolean' },
      csv: { type: 'boolean' },
      board: { type: 'string' },
    });
    if (values === null) return 0;
    if (values.json && values.csv) throw usageError('sessions', 'give --json or --csv, not both');
    if (values.interface !== undefined && !values.links) throw usageError('sessions', '--interface goes with --links');
    if (values.links && (values.device !== undefined || values.all)) throw usageError('sessions', '--links lists interfaces: give --interface NAME, not --device or --all');
    const format = values.json ? 'json' : values.csv ? 'csv' : 'table';
    const now = Date.now();
    if (values.board !== undefined) {
      if (values.links) throw usageError('sessions', '--links reads a board\'s own history; --board goes with --device, --all, --json and --csv');
      if (values.db === undefined) throw usageError('sessions', '--board needs --db: the collected fleet database');
      const store = await openFleetStore(values.db, { readonly: true });
      try {
        const devices = values.device !== undefined ? await resolveBoardDevice(store, values.board, values.device) : { usbOnly: !values.all };
        if (values.device !== undefined && (devices as DeviceRecord[]).length === 0) throw new HotplugError('ENODEVICE', `hotplugd sessions: board ${JSON.stringify(values.board)} forwarded no device ${JSON.stringify(values.device)}`);
        await printSessions(await boardSessions(store, values.board, devices), format, values, now);
      } finally {
        await store.close();
      }
      return 0;
    }
    const db = openHistoryDb(values.db ?? defaultDbPath(), { readonly: true });
    try {
      if (values.links) {
        await printLinkSessions(db, values.interface, format, now);
        return 0;
      }
      const devices = values.device !== undefined ? resolveDevice(db, values.device) : devicesWithSessions(db, { usbOnly: !values.all });
      if (values.device !== undefined && devices.length === 0) throw new HotplugError('ENODEVICE', `hotplugd sessions: no device ${JSON.stringify(values.device)} in the history`);
      await printSessions(devices.map((device) => ({ device, sessions: pairSessions(plugEvents(db, device)) })), format, values, now);
    } finally {
      db.close();
    }
    return 0;
  },
};

async function printSessions(list: { device: DeviceRecord; sessions: Session[] }[], format: 'table' | 'json' | 'csv', values: { device?: string | undefined; all?: boolean | undefined }, now: number): Promise<void> {
  if (format === 'csv') await writeLine(CSV_COLUMNS.join(','));
  // On stderr, so that scripts reading stdout see nothing to read.
  if (list.length === 0 && format === 'table') process.stderr.write(`No ${values.all ? '' : 'USB '}devices in the history yet${values.all ? '' : ' (--all for every device)'}.\n`);
  for (const { device, sessions } of list) {
    if (format === 'json') {
      await writeLine(JSON.stringify({ device, sessions }));
      continue;
    }
    if (format === 'csv') {
      const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
      for (const s of sessions) await writeLine([device.key, s.port, iso(s.pluggedAt), iso(s.unpluggedAt), s.endMissed, s.presentAtStart].map(csvField).join(','));
      continue;
    }
    await writeLine(printable(summaryLine(device, sessions, now)));
    if (values.device === undefined) continue;
    for (const session of sessions) await writeLine(printable(sessionLine(session, now)));
    if (sessions.some((s) => s.presentAtStart)) await writeLine('  * present when the daemon started: plugged at or before this time');
  }
}
