// The history's record shapes, and reading them back.
import type { HistoryDb } from './db.js';
import type { Uevent } from '../uevent/event.js';
import type { Plan } from '../rules/plan.js';
import type { DeviceIdentity } from './devices.js';
import { rowProperties } from './row-properties.js';
import { matchedRules } from './rule-sets.js';

/** Kinds of history entries that are not device events. */
export type IncidentKind =
  | 'seqnum-gap'
  | 'overflow'
  // Route notifications (links, addresses) were lost (ENOBUFS): dumped again.
  | 'link-overflow'
  // The size limit deleted events a forwarding target had not had acknowledged.
  | 'forward-dropped'
  // The database file was corrupt: moved aside and a new one started.
  | 'database-replaced'
  // Rows that could not be recorded (the disk stayed full, for example) and were given up.
  | 'history-lost';

export interface Incident {
  kind: IncidentKind;
  at: number;
  detail: Record<string, unknown>;
}

/** An incident as subscribers receive it, the moment it is recorded. */
export interface IncidentLine {
  incident: { kind: IncidentKind; at: string; detail: Record<string, unknown> };
}

/** The line subscribers receive for an incident. */
export function incidentLine(incident: Incident): IncidentLine {
  return { incident: { kind: incident.kind, at: new Date(incident.at).toISOString(), detail: incident.detail } };
}

/** A later result (a job ended, a unit started) as subscribers receive it. */
export interface ResultRecord {
  event_id: number;
  devpath: string;
  subsystem: string;
  result: unknown;
}

/** The shape `hotplugd history --json` prints; later tools read these field names. */
export interface EventRecord {
  id: number;
  seqnum: number | null;
  action: string;
  devpath: string;
  subsystem: string;
  devtype: string | null;
  devname: string | null;
  driver: string | null;
  major: number | null;
  minor: number | null;
  source: string;
  received_at: string;
  properties: Record<string, string>;
}

/** What the rules changed: recorded with the event when any rule matched. */
export interface EventResult {
  /** Properties the rules added or changed (the kernel's are in `properties`). */
  properties: Record<string, string>;
  /** Kernel properties the rules removed. */
  removed?: string[];
  symlinks: string[];
  tags: string[];
  /** Set when the event was recorded without being processed (the daemon stopped first). */
  note?: string;
}

/** An event as subscribers receive it, live or replayed from the history. */
export interface ProcessedRecord extends EventRecord {
  symlinks: string[];
  tags: string[];
  rules: string[];
}

/** The rules' changes to an event, or null when they changed nothing. */
export function eventResult(event: Uevent, plan: Plan | undefined, rules: readonly unknown[]): EventResult | null {
  if (!plan || rules.length === 0) return null;
  const properties: Record<string, string> = {};
  const removed = Object.keys(event.properties).filter((key) => !(key in plan.properties));
  let changed = plan.symlinks.length > 0 || plan.tags.length > 0 || removed.length > 0;
  for (const [key, value] of Object.entries(plan.properties)) {
    if (event.properties[key] === value) continue;
    properties[key] = value;
    changed = true;
  }
  if (!changed) return null;
  return { properties, ...(removed.length > 0 ? { removed } : {}), symlinks: plan.symlinks, tags: plan.tags };
}

export interface EventRow extends Omit<EventRecord, 'received_at' | 'properties'> {
  received_at: number;
  properties: string;
  result?: string | null;
  /** The list of rules that matched (rule-sets.ts); null when none did. */
  rule_set?: number | null;
}

/** The newest `limit` events (all when omitted), oldest first, one row at a time. */
export function* iterateEvents(db: HistoryDb, options: { limit?: number } = {}): Generator<EventRecord> {
  const rows = options.limit === undefined
    ? db.prepare('SELECT * FROM events ORDER BY id ASC').iterate()
    : db.prepare('SELECT * FROM (SELECT * FROM events ORDER BY id DESC LIMIT ?) ORDER BY id ASC').iterate(options.limit);
  for (const row of rows) yield toEventRecord(row as EventRow);
}

export function listEvents(db: HistoryDb, options: { limit?: number } = {}): EventRecord[] {
  return [...iterateEvents(db, options)];
}

export function toEventRecord(row: EventRow): EventRecord {
  return {
    id: row.id,
    seqnum: row.seqnum,
    action: row.action,
    devpath: row.devpath,
    subsystem: row.subsystem,
    devtype: row.devtype,
    devname: row.devname,
    driver: row.driver,
    major: row.major,
    minor: row.minor,
    source: row.source,
    received_at: new Date(row.received_at).toISOString(),
    properties: rowProperties(row),
  };
}

/** The kernel's properties with the rules' changes, as subscribers see an event. */
export function toProcessedRecord(row: EventRow, rules: string[]): ProcessedRecord {
  return withResult(toEventRecord(row), row.result ? (JSON.parse(row.result) as EventResult) : null, rules);
}

/** A recorded event with its result applied: properties after the rules, symlinks, tags. */
export function withResult(record: EventRecord, result: EventResult | null, rules: string[]): ProcessedRecord {
  const properties = { ...record.properties };
  for (const key of result?.removed ?? []) delete properties[key];
  Object.assign(properties, result?.properties);
  return { ...record, properties, symlinks: result?.symlinks ?? [], tags: result?.tags ?? [], rules };
}

/** The subscriber record of an event just processed: the same shape replay reads back, built without a round trip through JSON. */
export function processedRecord(id: number, event: Uevent, plan: Plan | undefined, rules: string[]): ProcessedRecord {
  const result = eventResult(event, plan, rules);
  const e = event;
  return {
    id, seqnum: e.seqnum ?? null, action: e.action, devpath: e.devpath, subsystem: e.subsystem, devtype: e.devtype ?? null,
    devname: e.devname ?? null, driver: e.driver ?? null, major: e.major ?? null, minor: e.minor ?? null, source: e.source,
    received_at: new Date(e.receivedAt).toISOString(),
    properties: { ...(result && plan ? plan.properties : e.properties) },
    symlinks: result?.symlinks ?? [], tags: result?.tags ?? [], rules,
  };
}

/** Recorded events with ids in (afterId, upToId], oldest first, in pages of `page`. */
export function* iterateProcessed(db: HistoryDb, afterId: number, upToId: number, page = 500): Generator<ProcessedRecord> {
  const events = db.prepare('SELECT * FROM events WHERE id > ? AND id <= ? ORDER BY id LIMIT ?');
  for (let from = afterId; from < upToId; ) {
    const rows = events.all(from, upToId, page) as EventRow[];
    if (rows.length === 0) return;
    const rules = matchedRules(db, rows);
    for (const row of rows) yield toProcessedRecord(row, rules.get(row.id) ?? []);
    from = rows[rows.length - 1]!.id;
  }
}

/** The id of the first event received at or after `time` (epoch ms), minus one: a cursor. */
export function cursorForTime(db: HistoryDb, time: number): number {
  const row = db.prepare('SELECT min(id) AS id FROM events WHERE received_at >= ?').get(time) as { id: number | null };
  if (row.id !== null) return row.id - 1;
  return (db.prepare('SELECT coalesce(max(id), 0) AS id FROM events').get() as { id: number }).id;
}

export interface IncidentRecord {
  id: number;
  kind: IncidentKind;
  at: string;
  detail: Record<string, unknown>;
}

export function listIncidents(db: HistoryDb, options: { limit?: number } = {}): IncidentRecord[] {
  const rows = db
    .prepare('SELECT * FROM (SELECT * FROM incidents ORDER BY id DESC LIMIT ?) ORDER BY id ASC')
    .all(options.limit ?? -1) as { id: number; kind: IncidentKind; at: number; detail: string }[];
  return rows.map((row) => ({
    id: row.id,
    kind: row.kind,
    at: new Date(row.at).toISOString(),
    detail: JSON.parse(row.detail) as Record<string, unknown>,
  }));
}

/** A `devices` row. */
export interface DeviceRecord {
  id: number;
  key: string;
  subsystem: string;
  devpath: string;
  vendor_id: string | null;
  product_id: string | null;
  serial: string | null;
  vendor: string | null;
  model: string | null;
  first_seen: number;
  last_seen: number;
}

/** The identity last recorded at `devpath`: for a USB device gone from sysfs. */
export function recordedIdentity(db: HistoryDb, devpath: string): DeviceIdentity | undefined {
  const row = db
    .prepare('SELECT * FROM devices WHERE devpath = ? ORDER BY last_seen DESC LIMIT 1')
    .get(devpath) as DeviceRecord | undefined;
  if (!row) return undefined;
  return {
    key: row.key, subsystem: row.subsystem, devpath: row.devpath, vendorId: row.vendor_id ?? undefined, productId: row.product_id ?? undefined,
    serial: row.serial ?? undefined, vendor: row.vendor ?? undefined, model: row.model ?? undefined,
  };
}
