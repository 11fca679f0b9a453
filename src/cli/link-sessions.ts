// `hotplugd sessions --links`: carrier sessions per network interface, as table, JSON or CSV.
import { carrierEvents, interfaceLinks, type CarrierSession, type InterfaceLinks } from '../history/link-sessions.js';
import { humanDuration } from '../history/sessions.js';
import type { HistoryDb } from '../history/db.js';
import { HotplugError } from '../errors.js';
import { csvField, localTime, printable, writeLine } from './output.js';

const CSV_COLUMNS = ['interface', 'devpath', 'up_at', 'down_at', 'duration_ms', 'end_missed', 'present_at_start'] as const;
const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

function duration(s: CarrierSession, now: number): number | null {
  if (s.upAt === null) return null;
  if (s.downAt !== null) return s.downAt - s.upAt;
  return s.endMissed ? null : now - s.upAt;
}

function summaryLine(links: InterfaceLinks, now: number): string {
  const last = links.sessions[links.sessions.length - 1];
  let state = '';
  if (last?.upAt != null && last.downAt === null && !last.endMissed) state = `, up since ${localTime(iso(last.upAt)!)} (${humanDuration(now - last.upAt)})`;
  else if (last?.downAt != null) state = `, down since ${localTime(iso(last.downAt)!)} (${humanDuration(now - last.downAt)})`;
  const ups = links.sessions.filter((s) => s.upAt !== null).length;
  return `${links.iface}: carrier ${ups} time${ups === 1 ? '' : 's'} since ${localTime(iso(links.firstAt)!)}, up ${humanDuration(links.upMs)} in all, ${links.flapsPerHour.toFixed(2)} flaps per hour${state}`;
}

function sessionLine(s: CarrierSession, now: number): string {
  const at = (t: number | null) => (t === null ? '?'.padEnd(23) : localTime(iso(t)!));
  const end = s.downAt !== null ? at(s.downAt) : s.endMissed ? '? (link-down not recorded)' : 'still up';
  const length = duration(s, now);
  return `  ${at(s.upAt)}${s.presentAtStart ? '*' : ' '} → ${end.padEnd(23)}  ${length === null ? '?' : `${humanDuration(length)}${s.downAt === null ? ' so far' : ''}`}`;
}

/** Prints the carrier sessions of every interface (summaries) or of one (each session). */
export async function printLinkSessions(db: HistoryDb, iface: string | undefined, format: 'table' | 'json' | 'csv', now = Date.now()): Promise<void> {
  const all = interfaceLinks(carrierEvents(db, iface), now);
  if (iface !== undefined && all.length === 0) throw new HotplugError('ENODEVICE', `hotplugd sessions: no link events of ${JSON.stringify(iface)} in the history`);
  if (all.length === 0 && format === 'table') process.stderr.write('No link-up or link-down events in the history yet.\n');
  if (format === 'csv') await writeLine(CSV_COLUMNS.join(','));
  for (const links of all) {
    if (format === 'json') {
      const sessions = links.sessions.map((s) => ({ up_at: iso(s.upAt), down_at: iso(s.downAt), duration_ms: duration(s, now), end_missed: s.endMissed, present_at_start: s.presentAtStart }));
      await writeLine(JSON.stringify({ interface: links.iface, devpath: links.devpath, first_at: iso(links.firstAt), last_at: iso(links.lastAt), up_ms: links.upMs, flaps_per_hour: links.flapsPerHour, sessions }));
    } else if (format === 'csv') {
      for (const s of links.sessions) {
        const row = [links.iface, links.devpath, iso(s.upAt), iso(s.downAt), duration(s, now), s.endMissed, s.presentAtStart];
        await writeLine(row.map(csvField).join(','));
      }
    } else {
      await writeLine(printable(summaryLine(links, now)));
      if (iface === undefined) continue;
      for (const s of links.sessions) await writeLine(printable(sessionLine(s, now)));
      if (links.sessions.some((s) => s.presentAtStart)) await writeLine('  * up when the daemon started: the carrier came at or before this time');
    }
  }
}
