// A collected fleet database: the history records boards forward (see daemon/forwarder.ts),
// each stored once per (board, id) whatever the broker redelivers, with the boards' status.
// Pure storage and queries; the MQTT side is daemon/collector.ts.
import type Database from 'better-sqlite3';
import { openSqlite } from './db.js';
import type { ActionRecord, HistoryRecord } from './query.js';

export type FleetDb = Database.Database;

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS boards (
    name        TEXT PRIMARY KEY,
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    status      TEXT,
    version     TEXT,
    events      INTEGER NOT NULL DEFAULT 0,
    -- Up to these ids the collector has every row of the board (chained by after_id).
    event_mark    INTEGER NOT NULL DEFAULT 0,
    action_mark   INTEGER NOT NULL DEFAULT 0,
    incident_mark INTEGER NOT NULL DEFAULT 0
  ) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS fleet_events (
    board       TEXT NOT NULL,
    id          INTEGER NOT NULL,
    after_id    INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    action      TEXT NOT NULL,
    subsystem   TEXT NOT NULL,
    devpath     TEXT NOT NULL,
    device      TEXT,
    record      TEXT NOT NULL,
    PRIMARY KEY (board, id)
  ) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS fleet_events_time ON fleet_events (received_at);
  CREATE INDEX IF NOT EXISTS fleet_events_device ON fleet_events (board, device);
  CREATE TABLE IF NOT EXISTS fleet_actions (
    board       TEXT NOT NULL,
    id          INTEGER NOT NULL,
    after_id    INTEGER NOT NULL,
    event_id    INTEGER NOT NULL,
    record      TEXT NOT NULL,
    PRIMARY KEY (board, id)
  ) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS fleet_actions_event ON fleet_actions (board, event_id);
  CREATE INDEX IF NOT EXISTS fleet_events_after ON fleet_events (board, after_id);
  CREATE INDEX IF NOT EXISTS fleet_actions_after ON fleet_actions (board, after_id);
  CREATE TABLE IF NOT EXISTS fleet_incidents (
    board       TEXT NOT NULL,
    id          INTEGER NOT NULL,
    after_id    INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    record      TEXT NOT NULL,
    PRIMARY KEY (board, id)
  ) WITHOUT ROWID;`;

/** The largest payload taken: a history record with 8 KiB outputs is far below it. */
export const MAX_PAYLOAD_BYTES = 256 * 1024;

export function openFleetDb(path: string, options: { readonly?: boolean } = {}): FleetDb {
  const db = openSqlite(path, 'fleet database', options);
  if (!options.readonly) db.exec(SCHEMA);
  return db;
}

/** True when the database is a collected fleet (it has the fleet tables). */
export function isFleetDb(db: Database.Database): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'fleet_events'").get() !== undefined;
}

export type Ingested = { stored: boolean } | { refused: string };

type Payload = Record<string, unknown>;

const isId = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) > 0;
const isText = (value: unknown): value is string => typeof value === 'string';
const timeOf = (value: unknown): number | undefined => (isText(value) && !Number.isNaN(Date.parse(value)) ? Date.parse(value) : undefined);

/** Checks one payload from PREFIX/<board>/events; the reason when it is refused. */
export function checkPayload(board: string, bytes: Buffer): { payload: Payload } | { refused: string } {
  if (bytes.length > MAX_PAYLOAD_BYTES) return { refused: `oversized: ${bytes.length} bytes (at most ${MAX_PAYLOAD_BYTES})` };
  let payload: unknown;
  try {
    payload = JSON.parse(bytes.toString('utf8'));
  } catch {
    return { refused: 'not JSON' };
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return { refused: 'not a JSON object' };
  const p = payload as Payload;
  if (p.board !== board) return { refused: `its board ${JSON.stringify(p.board)} is not the topic's ${JSON.stringify(board)}` };
  if (!isId(p.id)) return { refused: 'no positive integer id' };
  if (!Number.isSafeInteger(p.after) || (p.after as number) < 0 || (p.after as number) >= p.id) return { refused: 'no "after" id below its id' };
  if (p.type === 'event') {
    if (!isText(p.action) || !isText(p.subsystem) || !isText(p.devpath) || timeOf(p.received_at) === undefined) return { refused: 'an event without action, subsystem, devpath or received_at' };
  } else if (p.type === 'action') {
    if (!isId(p.event_id) || !isText(p.kind)) return { refused: 'a result without event_id or kind' };
  } else if (p.type === 'incident') {
    if (!isText(p.kind) || timeOf(p.at) === undefined) return { refused: 'an incident without kind or at' };
  } else return { refused: `unknown type ${JSON.stringify(p.type)}` };
  return { payload: p };
}

/** Prepared statements for storing checked payloads; call inside a transaction. */
export function fleetWriter(db: FleetDb) {
  // A row seen again keeps its record; its link to the chain takes the lower predecessor (a
  // board that sends again from an earlier point links it to what the collector has).
  const relink = 'ON CONFLICT (board, id) DO UPDATE SET after_id = min(after_id, excluded.after_id) WHERE excluded.after_id < after_id';
  const event = db.prepare(`INSERT INTO fleet_events (board, id, after_id, received_at, action, subsystem, devpath, device, record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ${relink}`);
  const action = db.prepare(`INSERT INTO fleet_actions (board, id, after_id, event_id, record) VALUES (?, ?, ?, ?, ?) ${relink}`);
  const incident = db.prepare(`INSERT INTO fleet_incidents (board, id, after_id, at, kind, record) VALUES (?, ?, ?, ?, ?, ?) ${relink}`);
  const has = {
    event: db.prepare('SELECT 1 FROM fleet_events WHERE board = ? AND id = ?'),
    action: db.prepare('SELECT 1 FROM fleet_actions WHERE board = ? AND id = ?'),
    incident: db.prepare('SELECT 1 FROM fleet_incidents WHERE board = ? AND id = ?'),
  };
  const seen = db.prepare(`INSERT INTO boards (name, first_seen, last_seen, events) VALUES (?, ?, ?, ?)
    ON CONFLICT (name) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen), events = events + excluded.events`);
  const status = db.prepare(`INSERT INTO boards (name, first_seen, last_seen, status, version) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (name) DO UPDATE SET status = excluded.status, version = coalesce(excluded.version, version)`);
  return {
    /** Stores a checked payload; false when that (board, id) was stored already. */
    store(board: string, p: Payload, now: number): boolean {
      const record = JSON.stringify(p);
      const stream = p.type as 'event' | 'action' | 'incident';
      const isNew = has[stream].get(board, p.id) === undefined;
      let changes = 0;
      if (p.type === 'event') {
        changes = event.run(board, p.id, p.after, timeOf(p.received_at), p.action, p.subsystem, p.devpath, isText(p.device) ? p.device : null, record).changes;
        // An event's own actions are kept once each, as results that come later are.
        for (const a of Array.isArray(p.actions) ? (p.actions as Payload[]) : []) {
          if (isId(a.id) && Number.isSafeInteger(a.after) && (a.after as number) < a.id) action.run(board, a.id, a.after, p.id, JSON.stringify(a));
        }
      } else if (p.type === 'action') changes = action.run(board, p.id, p.after, p.event_id, record).changes;
      else changes = incident.run(board, p.id, p.after, timeOf(p.at), p.kind, record).changes;
      seen.run(board, now, now, p.type === 'event' && isNew ? 1 : 0);
      return isNew && changes > 0;
    },
    status(board: string, state: string, version: string | undefined, now: number): void {
      status.run(board, now, now, state, version ?? null);
    },
  };
}

export interface Marks {
  event_id: number;
  action_id: number;
  incident_id: number;
}

/** Moves a board's marks along the chains of rows it has (each row names the one before it); returns them. */
export function advanceMarks(db: FleetDb, board: string): Marks {
  const row = db.prepare('SELECT event_mark, action_mark, incident_mark FROM boards WHERE name = ?').get(board) as
    | { event_mark: number; action_mark: number; incident_mark: number }
    | undefined;
  if (row === undefined) return { event_id: 0, action_id: 0, incident_id: 0 };
  const follow = (table: string, mark: number) => {
    const next = db.prepare(`SELECT id FROM ${table} WHERE board = ? AND after_id = ?`);
    for (let found = next.get(board, mark) as { id: number } | undefined; found; found = next.get(board, mark) as { id: number } | undefined) mark = found.id;
    return mark;
  };
  const marks = { event_id: follow('fleet_events', row.event_mark), action_id: follow('fleet_actions', row.action_mark), incident_id: follow('fleet_incidents', row.incident_mark) };
  db.prepare('UPDATE boards SET event_mark = ?, action_mark = ?, incident_mark = ? WHERE name = ?').run(marks.event_id, marks.action_id, marks.incident_id, board);
  return marks;
}

export interface BoardRecord {
  name: string;
  first_seen: number;
  last_seen: number;
  status: string | null;
  version: string | null;
  events: number;
}

export function listBoards(db: FleetDb): BoardRecord[] {
  return db.prepare('SELECT * FROM boards ORDER BY name').all() as BoardRecord[];
}

export interface FleetFilter {
  board: string;
  since?: number | undefined;
  until?: number | undefined;
  actions?: string[] | undefined;
  subsystems?: string[] | undefined;
}

/** A board's collected events, oldest first, with every action known for each (results included, once). */
export function* fleetEvents(db: FleetDb, filter: FleetFilter, limit?: number): Generator<HistoryRecord> {
  const clauses = ['board = ?'];
  const params: unknown[] = [filter.board];
  if (filter.since !== undefined) (clauses.push('received_at >= ?'), params.push(filter.since));
  if (filter.until !== undefined) (clauses.push('received_at < ?'), params.push(filter.until));
  if (filter.actions?.length) (clauses.push(`action IN (${filter.actions.map(() => '?').join(',')})`), params.push(...filter.actions));
  if (filter.subsystems?.length) (clauses.push(`(${filter.subsystems.map(() => 'subsystem GLOB ?').join(' OR ')})`), params.push(...filter.subsystems));
  const sql = `SELECT id, record FROM fleet_events WHERE ${clauses.join(' AND ')}`;
  const rows = (limit === undefined
    ? db.prepare(`${sql} ORDER BY id`).all(...params)
    : db.prepare(`SELECT * FROM (${sql} ORDER BY id DESC LIMIT ?) ORDER BY id`).all(...params, limit)) as { id: number; record: string }[];
  const actionsOf = db.prepare('SELECT record FROM fleet_actions WHERE board = ? AND event_id = ? ORDER BY id');
  for (const row of rows) {
    const { type: _type, board: _board, ...record } = JSON.parse(row.record) as HistoryRecord & { type: string; board: string };
    const actions = (actionsOf.all(filter.board, row.id) as { record: string }[]).map((a) => {
      const { type: _t, board: _b, event_id: _e, ...action } = JSON.parse(a.record) as ActionRecord & { type?: string; board?: string; event_id?: number };
      return action as ActionRecord;
    });
    yield { ...record, actions };
  }
}
