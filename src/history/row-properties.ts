// The events table keeps ACTION, DEVPATH, SUBSYSTEM and SEQNUM in columns of their own, so
// its JSON of properties leaves them out (no property stored twice: ~30% fewer bytes per
// event) and reading a row puts them back, in the kernel's order. A value that differs from
// its column (no kernel event has one) stays in the JSON. Rows written before schema 7 hold
// every property; they read as they are.
import type { Uevent } from '../uevent/event.js';

/** The JSON stored for an event's properties. */
export function storedProperties(e: Uevent): string {
  const p = e.properties;
  if (p.ACTION !== e.action || p.DEVPATH !== e.devpath || p.SUBSYSTEM !== e.subsystem) return JSON.stringify(p);
  const seqnumInColumn = e.seqnum !== undefined && p.SEQNUM === String(e.seqnum);
  const rest: Record<string, string> = {};
  for (const key in p) {
    if (key === 'ACTION' || key === 'DEVPATH' || key === 'SUBSYSTEM' || (key === 'SEQNUM' && seqnumInColumn)) continue;
    rest[key] = p[key] as string;
  }
  return JSON.stringify(rest);
}

/** An event row's properties, whole again. */
export function rowProperties(row: { action: string; devpath: string; subsystem: string; seqnum: number | null; properties: string }): Record<string, string> {
  const stored = JSON.parse(row.properties) as Record<string, string>;
  if ('ACTION' in stored) return stored;
  const properties: Record<string, string> = { ACTION: row.action, DEVPATH: row.devpath, SUBSYSTEM: row.subsystem, ...stored };
  if (row.seqnum !== null && !('SEQNUM' in stored)) properties.SEQNUM = String(row.seqnum);
  return properties;
}

/** The column that holds a property left out of the JSON, for filters on it (a fixed name, never user text). */
export const PROPERTY_COLUMNS: Readonly<Record<string, string>> = { ACTION: 'e.action', DEVPATH: 'e.devpath', SUBSYSTEM: 'e.subsystem', SEQNUM: 'CAST(e.seqnum AS TEXT)' };
