import { defaultDbPath, openHistoryDb } from '../history/db.js';
import { iterateEvents, listIncidents, type EventRecord } from '../history/store.js';
import { parseCommandArgs, parsePositiveInt, type Command } from './args.js';

const usage = `Usage: hotplugd history [--db PATH] [--json] [--limit N] [--incidents]

List recorded events, oldest first.

Options:
  --db PATH      history database (default: ${defaultDbPath()})
  --json         one JSON object per line: id, seqnum, action, devpath, subsystem,
                 devtype, devname, driver, major, minor, source (kernel, coldplug,
                 resync), received_at (ISO 8601) and properties
  --limit N      only the newest N entries (still printed oldest first)
  --incidents    list incidents instead of events: SEQNUM gaps (kernel events
                 this daemon never received) and overflows (ENOBUFS and resync)
  -h, --help     show this help`;

function formatRow(record: EventRecord): string {
  const seqnum = record.seqnum === null ? '-' : String(record.seqnum);
  return `${record.received_at}  ${seqnum.padStart(8)}  ${record.source.padEnd(8)}  ${record.action.padEnd(7)}  ${record.subsystem.padEnd(10)}  ${record.devpath}`;
}

/** Writes a line, waiting when stdout is full, so a large history streams in bounded memory. */
async function writeLine(line: string): Promise<void> {
  if (!process.stdout.write(`${line}\n`)) await new Promise((resolve) => process.stdout.once('drain', resolve));
}

export const historyCommand: Command = {
  name: 'history',
  summary: 'list recorded device events',
  usage,
  async run(argv) {
    const values = parseCommandArgs('history', usage, argv, {
      db: { type: 'string' },
      json: { type: 'boolean' },
      limit: { type: 'string' },
      incidents: { type: 'boolean' },
    });
    if (values === null) return 0;
    const limit = parsePositiveInt('history', 'limit', values.limit);
    const db = openHistoryDb(values.db ?? defaultDbPath(), { readonly: true });
    try {
      if (values.incidents) {
        for (const incident of listIncidents(db, { limit })) {
          await writeLine(values.json ? JSON.stringify(incident) : `${incident.at}  ${incident.kind.padEnd(10)}  ${JSON.stringify(incident.detail)}`);
        }
      } else {
        for (const record of iterateEvents(db, { limit })) await writeLine(values.json ? JSON.stringify(record) : formatRow(record));
      }
    } finally {
      db.close();
    }
    return 0;
  },
};
