// Queries over the history: filtered event listings with their rules and actions, and
// which devices a name the user typed means.
import { historyName } from '../uevent/device-names.js';
import type { HistoryDb } from './db.js';
import { usbDevicePath } from './devices.js';
import { PROPERTY_COLUMNS } from './row-properties.js';
import { matchedRules, ruleFilter } from './rule-sets.js';
import { toEventRecord, toProcessedRecord, type DeviceRecord, type EventRecord, type EventResult, type EventRow, type ProcessedRecord } from './records.js';

export type { DeviceRecord };

export interface HistoryFilter {
  /** Physical devices (devices.id); see `resolveDevice`. */
  deviceIds?: number[] | undefined;
  /** Subsystem globs (any may match). */
  subsystems?: string[] | undefined;
  actions?: string[] | undefined;
  /** Epoch ms, inclusive. */
  since?: number | undefined;
  /** Epoch ms, exclusive. */
  until?: number | undefined;
  /** KEY=GLOB: the property after the rules (or the kernel's) must match. */
  properties?: { key: string; glob: string }[] | undefined;
  /** Rule names or labels, globs (any may match): a rule that matched the event. */
  rules?: string[] | undefined;
}

export interface ActionRecord {
  /** The action's row id: later results of an event (jobs) come with higher ids. */
  id: number;
  kind: string;
  target: string;
  rule: string | null;
  ok: boolean;
  error: string | null;
  exit_code: number | null;
  duration_ms: number;
  finished_at: string;
}

/** One line of `hotplugd history --json`: the event, its device, what the rules did. */
export interface HistoryRecord extends EventRecord {
  device: string | null;
  result: EventResult | null;
  rules: string[];
  actions: ActionRecord[];
}

interface Where {
  sql: string;
  params: unknown[];
}

function where(db: HistoryDb, filter: HistoryFilter): Where {
  const clauses: string[] = [];
  const params: unknown[] = [];
  const anyOf = (column: string, op: string, values: readonly unknown[] | undefined) => {
    if (!values || values.length === 0) return;
    clauses.push(`(${values.map(() => `${column} ${op} ?`).join(' OR ')})`);
    params.push(...values);
  };
  if (filter.deviceIds) {
    clauses.push(`e.device_id IN (SELECT value FROM json_each(?))`);
    params.push(JSON.stringify(filter.deviceIds));
  }
  anyOf('e.subsystem', 'GLOB', filter.subsystems);
  anyOf('e.action', '=', filter.actions);
  if (filter.since !== undefined) {
    clauses.push('e.received_at >= ?');
    params.push(filter.since);
  }
  if (filter.until !== undefined) {
    clauses.push('e.received_at < ?');
    params.push(filter.until);
  }
  for (const { key, glob } of filter.properties ?? []) {
    // A key never reaches the SQL text: the JSON path is a bound parameter.
    const path = `$."${key.replace(/"/g, '')}"`;
    // Properties kept in columns are not in the stored JSON (row-properties.ts).
    const column = Object.hasOwn(PROPERTY_COLUMNS, key) ? `, ${PROPERTY_COLUMNS[key]}` : '';
    clauses.push(`coalesce(json_extract(e.result, '$.properties' || substr(?, 2)), json_extract(e.properties, ?)${column}) GLOB ?`);
    params.push(path, path, glob);
  }
  if (filter.rules && filter.rules.length > 0) {
    const rules = ruleFilter(db, filter.rules);
    clauses.push(rules.sql);
    params.push(...rules.params);
  }
  return { sql: clauses.length > 0 ? clauses.join(' AND ') : '1', params };
}

interface HistoryRow extends EventRow {
  result: string | null;
  device_key: string | null;
}

const PAGE = 500;
const SELECT = 'SELECT e.*, d.key AS device_key FROM events e LEFT JOIN devices d ON d.id = e.device_id';

/**
 * Matching events with ids above `afterId` (and up to `upToId`), oldest first, read in pages. With `limit`,
 * only the newest `limit` of them (still oldest first).
 */
export function* queryEvents(db: HistoryDb, filter: HistoryFilter, options: { limit?: number | undefined; afterId?: number; upToId?: number } = {}): Generator<HistoryRecord> {
  const { sql: filterSql, params: filterParams } = where(db, filter);
  const sql = options.upToId === undefined ? filterSql : `${filterSql} AND e.id <= ?`;
  const params = options.upToId === undefined ? filterParams : [...filterParams, options.upToId];
  let after = options.afterId ?? 0;
  let remaining = Infinity;
  if (options.limit !== undefined) {
    const rows = db.prepare(`SELECT e.id FROM events e WHERE ${sql} AND e.id > ? ORDER BY e.id DESC LIMIT ?`).all(...params, after, options.limit) as { id: number }[];
    if (rows.length === 0) return;
    after = rows[rows.length - 1]!.id - 1;
    remaining = rows.length;
  }
  const page = db.prepare(`${SELECT} WHERE ${sql} AND e.id > ? ORDER BY e.id LIMIT ?`);
  while (remaining > 0) {
    const rows = page.all(...params, after, Math.min(PAGE, remaining)) as HistoryRow[];
    if (rows.length === 0) return;
    yield* withDetails(db, rows);
    after = rows[rows.length - 1]!.id;
    remaining -= rows.length;
  }
}

function withDetails(db: HistoryDb, rows: HistoryRow[]): HistoryRecord[] {
  const ids = JSON.stringify(rows.map((r) => r.id));
  const rules = matchedRules(db, rows);
  const actions = new Map<number, ActionRecord[]>();
  const actionRows = db
    .prepare('SELECT id, event_id, kind, target, rule, ok, error, exit_code, duration_ms, finished_at FROM actions WHERE event_id IN (SELECT value FROM json_each(?)) ORDER BY id')
    .all(ids) as (Omit<ActionRecord, 'ok' | 'finished_at'> & { event_id: number; ok: number; finished_at: number })[];
  for (const { event_id, ok, finished_at, ...a } of actionRows) {
    const list = actions.get(event_id) ?? [];
    list.push({ ...a, ok: ok === 1, finished_at: new Date(finished_at).toISOString() });
    actions.set(event_id, list);
  }
  return rows.map((row) => ({
    ...toEventRecord(row),
    device: row.device_key,
    result: row.result ? (JSON.parse(row.result) as EventResult) : null,
    rules: rules.get(row.id) ?? [],
    actions: actions.get(row.id) ?? [],
  }));
}

/**
 * The physical devices a name means: an identity key, `vendor:product[:serial]`, a serial,
 * a devpath (`/devices/...` or `/sys/...`), a /dev node or a kernel name (`sdb`, `eth0`).
 */
export function resolveDevice(db: HistoryDb, text: string): DeviceRecord[] {
  const name = historyName(text);
  const byIdentity = db
    .prepare(
      `SELECT * FROM devices WHERE key = @name OR serial = @name OR vendor_id || ':' || product_id = lower(@name)
         OR vendor_id || ':' || product_id || ':' || serial = @name OR devpath = @name OR substr(devpath, -length(@name) - 1) = '/' || @name`,
    )
    .all({ name }) as DeviceRecord[];
  const byName = db
    .prepare('SELECT * FROM devices WHERE id IN (SELECT device_id FROM device_names WHERE name IN (?, ?))')
    .all(name, `/dev/${name}`) as DeviceRecord[];
  // A devpath below a USB device (its tty, its disk) belongs to that device.
  const usbPath = name.startsWith('/devices/') ? usbDevicePath(name) : undefined;
  const byEvents = usbPath === undefined ? [] : (db.prepare('SELECT * FROM devices WHERE devpath = ?').all(usbPath) as DeviceRecord[]);
  const found = new Map<number, DeviceRecord>();
  for (const device of [...byIdentity, ...byName, ...byEvents]) found.set(device.id, device);
  return [...found.values()].sort((a, b) => a.id - b.id);
}

/** The devpath of the newest recorded event whose device was named `name` (a node, a kernel name, a devpath). */
export function newestDevpathNamed(db: HistoryDb, name: string): string | undefined {
  const row = db
    .prepare(
      `SELECT devpath FROM events WHERE device_id IN (SELECT device_id FROM device_names WHERE name = ?)
       AND (devname = ? OR devpath = ? OR substr(devpath, -length(?) - 1) = '/' || ?) ORDER BY id DESC LIMIT 1`,
    )
    .get(name, name, name, name, name) as { devpath: string } | undefined;
  return row?.devpath;
}

/** The newest event id (0 when there is none). */
export function lastEventId(db: HistoryDb): number {
  return (db.prepare('SELECT coalesce(max(id), 0) AS id FROM events').get() as { id: number }).id;
}

/** The newest processed (not removed, not link) event of `devpath` among the devices' events, as subscribers saw it. */
export function lastProcessed(db: HistoryDb, devpath: string, devices: DeviceRecord[]): ProcessedRecord | undefined {
  const row = db
    .prepare(
      `SELECT * FROM events WHERE device_id IN (SELECT value FROM json_each(?)) AND devpath = ? AND action != 'remove'
       AND action NOT IN ('link-up', 'link-down', 'address-add', 'address-remove') AND source != 'debounce' ORDER BY id DESC LIMIT 1`,
    )
    .get(JSON.stringify(devices.map((d) => d.id)), devpath) as EventRow | undefined;
  if (!row) return undefined;
  return toProcessedRecord(row, matchedRules(db, [row]).get(row.id) ?? []);
}
