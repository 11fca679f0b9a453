import { defaultDbPath } from '../defaults.js';
import { openHistoryDb, type HistoryDb } from '../history/db.js';
import { listIncidents } from '../history/records.js';
import { openFleetStore } from '../fleet/store.js';
import { lastEventId, queryEvents, resolveDevice, type HistoryFilter, type HistoryRecord } from '../history/query.js';
import { HotplugError } from '../errors.js';
import { parseCommandArgs, parsePositiveInt, parseTimeOption, usageError, type Command } from './args.js';
import { csvField, localTime, StreamingTable, writeLine } from './output.js';

const usage = `Usage: hotplugd history [options]

List recorded events, oldest first, with the rules that matched and the actions
taken.

Filters (all must hold; repeated options of one kind: any may match):
  --device X         a physical device: vendor:product[:serial] (0781:5583), a
                     serial, an identity key (usb:0781:5583:4C53...), a devpath,
                     /dev/NODE or a kernel name (sdb, eth0); every event of that
                     device (a USB stick's interfaces and disks too)
  --subsystem GLOB   e.g. block, usb*, tty
  --action ACTION    add, remove, change, move, bind, unbind, ...
  --since TIME       TIME: 1h, 2d, 30m (ago), today, yesterday, or ISO 8601
  --until TIME       (2026-11-22, 2026-11-22T10:00, 2026-11-22T10:00:00Z)
  --property K=V     a property after the rules, V a glob (ID_VENDOR_ID=0781)
  --rule NAME        a rule that matched: its name as the table shows it (a
                     YAML rule's name, FILE:LINE for udev and mdev rules) or
                     its label (NAME (FILE:LINE:COLUMN)), a glob
                     ('60-serial.rules:*', 'dhcp')

Output:
  --limit N          only the newest N matching events
  --json             one JSON object per line: id, seqnum, action, devpath,
                     subsystem, devtype, devname, driver, major, minor, source,
                     received_at, properties, device, result, rules, actions
  --csv              CSV with a header line
  --follow           then print new events as they are recorded (Ctrl-C ends);
                     without --limit or --since, starts from the newest 10
  --incidents        list incidents instead: SEQNUM gaps, overflows, database
                     replacements, rows lost
  --board NAME       one board's events in a collected fleet database ('hotplugd
                     collect --db'; give that file or postgres:// URL as --db);
                     with --subsystem, --action, --since, --until, --limit and
                     the output options
  --db PATH          history database (default: ${defaultDbPath()})
  -h, --help         show this help

The table shows local times; JSON and CSV show UTC (ISO 8601).`;

const FOLLOW_POLL_MS = 250;

function parseProperty(text: string): { key: string; glob: string } {
  const at = text.indexOf('=');
  const key = text.slice(0, at);
  if (at <= 0 || !/^[A-Za-z0-9_.:-]+$/.test(key)) throw usageError('history', `--property: expected KEY=VALUE; got ${JSON.stringify(text)}`);
  return { key, glob: text.slice(at + 1) };
}

function summary(record: HistoryRecord): string {
  const parts: string[] = [];
  if (record.result?.note) parts.push(record.result.note);
  const rules = record.rules.map((r) => r.replace(/ \(.*\)$/, ''));
  if (rules.length > 0) parts.push(`rules: ${rules.join(', ')}`);
  const failed = record.actions.filter((a) => !a.ok);
  if (record.actions.length > 0) parts.push(`${record.actions.length} action${record.actions.length === 1 ? '' : 's'}${failed.length > 0 ? ` (${failed.length} failed: ${failed.map((a) => a.error).join('; ')})` : ''}`);
  return parts.join('; ') || '-';
}

const CSV_COLUMNS = ['id', 'received_at', 'seqnum', 'action', 'subsystem', 'devpath', 'devtype', 'devname', 'driver', 'major', 'minor', 'source', 'device', 'rules', 'actions', 'properties'] as const;

type Printer = { print(record: HistoryRecord): Promise<void>; flush(): Promise<void> };

function printer(format: 'table' | 'json' | 'csv'): Printer {
  if (format === 'json') return { print: (r) => writeLine(JSON.stringify(r)), flush: async () => {} };
  if (format === 'csv') {
    let header = false;
    return {
      async print(r) {
        if (!header) await writeLine(CSV_COLUMNS.join(','));
        header = true;
        const row = { ...r, rules: r.rules.join('; '), actions: summary({ ...r, rules: [] }) };
        await writeLine(CSV_COLUMNS.map((c) => csvField(row[c])).join(','));
      },
      flush: async () => {},
    };
  }
  const table = new StreamingTable(['ID', 'TIME', 'ACTION', 'SUBSYSTEM', 'DEVICE', 'WHAT HAPPENED']);
  return {
    print: (r) => table.add([String(r.id), localTime(r.received_at), r.action, r.subsystem, r.devname ?? r.devpath, summary(r)]),
    flush: () => table.flush(),
  };
}

/** The ids of the devices `--device` names; an error when the history knows none. */
export function deviceFilter(command: string, db: HistoryDb, device: string | undefined): number[] | undefined {
  if (device === undefined) return undefined;
  const devices = resolveDevice(db, device);
  if (devices.length === 0) throw new HotplugError('ENODEVICE', `hotplugd ${command}: no device ${JSON.stringify(device)} in the history`);
  return devices.map((d) => d.id);
}

export const historyCommand: Command = {
  name: 'history',
  usage,
  async run(argv) {
    const values = parseCommandArgs('history', usage, argv, {
      db: { type: 'string' },
      device: { type: 'string' },
      subsystem: { type: 'string', multiple: true },
      action: { type: 'string', multiple: true },
      since: { type: 'string' },
      until: { type: 'string' },
      property: { type: 'string', multiple: true },
      rule: { type: 'string', multiple: true },
      json: { type: 'boolean' },
      csv: { type: 'boolean' },
      limit: { type: 'string' },
      follow: { type: 'boolean' },
      incidents: { type: 'boolean' },
      board: { type: 'string' },
    });
    if (values === null) return 0;
    if (values.json && values.csv) throw usageError('history', 'give --json or --csv, not both');
    let limit = parsePositiveInt('history', 'limit', values.limit);
    const filter: HistoryFilter = {
      subsystems: values.subsystem,
      actions: values.action,
      since: parseTimeOption('history', 'since', values.since),
      until: parseTimeOption('history', 'until', values.until),
      properties: values.property?.map(parseProperty),
      rules: values.rule,
    };
    if (values.follow && limit === undefined && filter.since === undefined) limit = 10;
    if (values.board !== undefined) {
      if (values.device !== undefined || values.property !== undefined || values.rule !== undefined || values.follow || values.incidents) throw usageError('history', '--board goes with --subsystem, --action, --since, --until, --limit, --json and --csv');
      if (values.db === undefined) throw usageError('history', '--board needs --db: the collected fleet database');
      const fleet = await openFleetStore(values.db, { readonly: true });
      try {
        const out = printer(values.json ? 'json' : values.csv ? 'csv' : 'table');
        for await (const record of fleet.events({ board: values.board, since: filter.since, until: filter.until, actions: filter.actions, subsystems: filter.subsystems }, limit)) await out.print(record);
        await out.flush();
      } finally {
        await fleet.close();
      }
      return 0;
    }
    const db = openHistoryDb(values.db ?? defaultDbPath(), { readonly: true });
    try {
      if (values.incidents) {
        const incidents = listIncidents(db, { limit });
        for (const incident of incidents) {
          await writeLine(values.json ? JSON.stringify(incident) : `${incident.at}  ${incident.kind.padEnd(17)}  ${JSON.stringify(incident.detail)}`);
        }
        // On stderr, so that scripts reading stdout see nothing to read.
        if (incidents.length === 0 && !values.json) process.stderr.write('No incidents recorded (no SEQNUM gaps, overflows or replaced databases).\n');
        return 0;
      }
      filter.deviceIds = deviceFilter('history', db, values.device);
      const out = printer(values.json ? 'json' : values.csv ? 'csv' : 'table');
      let upTo = lastEventId(db);
      for (const record of queryEvents(db, filter, { limit, upToId: upTo })) await out.print(record);
      await out.flush();
      while (values.follow) {
        await new Promise((resolve) => setTimeout(resolve, FOLLOW_POLL_MS));
        const top = lastEventId(db);
        if (top <= upTo) continue;
        // A device first seen now is a new devices row: resolve the name again.
        if (values.device !== undefined) filter.deviceIds = resolveDevice(db, values.device).map((d) => d.id);
        for (const record of queryEvents(db, filter, { afterId: upTo, upToId: top })) await out.print(record);
        await out.flush();
        upTo = top;
      }
    } finally {
      db.close();
    }
    return 0;
  },
};
