// A collected fleet database in SQLite (the default): the history records boards forward (see
// fleet/forward.ts), each stored once per (board, id) whatever the broker redelivers, with
// the boards' status. The queries are shared with PostgreSQL (fleet-queries.ts).
import type Database from 'better-sqlite3';
import { HotplugError } from '../errors.js';
import { openSqlite } from '../history/db.js';
import { FleetQueries, type SqlRunner } from './queries.js';
import { batchRows, conflictsOf, eventColumns, storedRecord, timeOf, type Conflict, type FleetStore, type Payload, type StoreOutcome } from './records.js';

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
    devname     TEXT,
    devtype     TEXT,
    PRIMARY KEY (board, id)
  ) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS fleet_events_time ON fleet_events (received_at);
  CREATE INDEX IF NOT EXISTS fleet_events_device ON fleet_events (board, device);
  CREATE INDEX IF NOT EXISTS fleet_events_devpath ON fleet_events (board, devpath);
  CREATE TABLE IF NOT EXISTS fleet_actions (
    board       TEXT NOT NULL,
    id          INTEGER NOT NULL,
    after_id    INTEGER NOT NULL,
    event_id    INTEGER NOT NULL,
    record      TEXT NOT NULL,
    PRIMARY KEY (board, id)
  ) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS fleet_actions_event ON fleet_actions (board, event_id);
  CREATE TABLE IF NOT EXISTS fleet_incidents (
    board       TEXT NOT NULL,
    id          INTEGER NOT NULL,
    after_id    INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    record      TEXT NOT NULL,
    PRIMARY KEY (board, id)
  ) WITHOUT ROWID;
  -- The chains are walked by id (after_id < id): no index of their own, which every row would pay for.
  DROP INDEX IF EXISTS fleet_events_after;
  DROP INDEX IF EXISTS fleet_actions_after;
  DROP INDEX IF EXISTS fleet_incidents_after;
  -- A record received for a (board, id) held already, with other content: both kept.
  CREATE TABLE IF NOT EXISTS fleet_conflicts (
    board       TEXT NOT NULL,
    stream      TEXT NOT NULL,
    id          INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    stored      TEXT NOT NULL,
    received    TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS fleet_conflicts_board ON fleet_conflicts (board, id);`;

// Databases collected before devname and devtype had columns get them, filled from the records.
function addNameColumns(db: Database.Database): void {
  const columns = (db.prepare('PRAGMA table_info(fleet_events)').all() as { name: string }[]).map((c) => c.name);
  if (columns.length === 0 || columns.includes('devname')) return;
  db.transaction(() => {
    db.exec('ALTER TABLE fleet_events ADD COLUMN devname TEXT; ALTER TABLE fleet_events ADD COLUMN devtype TEXT');
    db.exec("UPDATE fleet_events SET devname = json_extract(record, '$.devname'), devtype = json_extract(record, '$.devtype')");
  })();
}

export class SqliteFleet extends FleetQueries implements FleetStore {
  readonly location: string;
  readonly db: Database.Database;
  protected readonly run: SqlRunner;
  #writer: ReturnType<typeof sqliteWriter> | undefined;

  constructor(path: string, options: { readonly?: boolean } = {}) {
    super();
    this.location = path;
    this.db = openSqlite(path, 'fleet database', options);
    if (options.readonly) {
      if (this.db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'fleet_events'").get() === undefined) {
        this.db.close();
        throw new HotplugError('EUSAGE', `${path} is not a collected fleet database (hotplugd collect --db)`);
      }
    } else {
      addNameColumns(this.db);
      this.db.exec(SCHEMA);
    }
    const statements = new Map<string, Database.Statement>();
    const db = this.db;
    this.run = {
      dialect: 'sqlite',
      async all<T>(sql: string, params: readonly unknown[]): Promise<T[]> {
        let statement = statements.get(sql);
        if (statement === undefined) statements.set(sql, (statement = db.prepare(sql)));
        return (statement.reader ? statement.all(...params) : (statement.run(...params), [])) as T[];
      },
    };
  }

  // Prepared at the first write: a read-only store never needs them.
  get #write() {
    return (this.#writer ??= sqliteWriter(this.db));
  }

  storeBatch(board: string, records: readonly Payload[], now: number): Promise<StoreOutcome> {
    return Promise.resolve(this.#write.storeBatch(board, records, now));
  }

  status(board: string, state: string, version: string | undefined, now: number): Promise<void> {
    this.#write.status(board, state, version, now);
    return Promise.resolve();
  }


  close(): Promise<void> {
    this.db.close();
    return Promise.resolve();
  }
}

/** Prepared statements storing checked records, one transaction per message. */
function sqliteWriter(db: Database.Database) {
  // Most records are new: inserted without looking first. A row held already keeps its record;
  // its link to the chain takes the lower predecessor (a board that sends again from an
  // earlier point links it to what the collector has), and its record is compared.
  const tables = {
    event: {
      insert: db.prepare(`INSERT INTO fleet_events (board, id, after_id, received_at, action, subsystem, devpath, device, devname, devtype, record)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (board, id) DO NOTHING`),
      relink: db.prepare('UPDATE fleet_events SET after_id = ? WHERE board = ? AND id = ? AND after_id > ?'),
      held: db.prepare('SELECT record FROM fleet_events WHERE board = ? AND id = ?').pluck(),
    },
    action: {
      insert: db.prepare('INSERT INTO fleet_actions (board, id, after_id, event_id, record) VALUES (?, ?, ?, ?, ?) ON CONFLICT (board, id) DO NOTHING'),
      relink: db.prepare('UPDATE fleet_actions SET after_id = ? WHERE board = ? AND id = ? AND after_id > ?'),
      held: db.prepare('SELECT record FROM fleet_actions WHERE board = ? AND id = ?').pluck(),
    },
    incident: {
      insert: db.prepare('INSERT INTO fleet_incidents (board, id, after_id, at, kind, record) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (board, id) DO NOTHING'),
      relink: db.prepare('UPDATE fleet_incidents SET after_id = ? WHERE board = ? AND id = ? AND after_id > ?'),
      held: db.prepare('SELECT record FROM fleet_incidents WHERE board = ? AND id = ?').pluck(),
    },
  };
  const conflict = db.prepare('INSERT INTO fleet_conflicts (board, stream, id, at, stored, received) VALUES (?, ?, ?, ?, ?, ?)');
  const seen = db.prepare(`INSERT INTO boards (name, first_seen, last_seen, events) VALUES (?, ?, ?, ?)
    ON CONFLICT (name) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen), events = events + excluded.events`);
  const status = db.prepare(`INSERT INTO boards (name, first_seen, last_seen, status, version) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (name) DO UPDATE SET status = excluded.status, version = coalesce(excluded.version, version)`);
  return {
    storeBatch: db.transaction((board: string, records: readonly Payload[], now: number): StoreOutcome => {
      const rows = batchRows(records);
      const had: { stream: Conflict['stream']; id: number; record: unknown }[] = [];
      const store = (stream: Conflict['stream'], p: Payload, values: unknown[]) => {
        const t = tables[stream];
        if (t.insert.run(board, p.id, p.after, ...values).changes === 1) return;
        t.relink.run(p.after, board, p.id, p.after);
        had.push({ stream, id: p.id as number, record: t.held.get(board, p.id) });
      };
      for (const p of rows.events) {
        const c = eventColumns(p);
        store('event', p, [c.receivedAt, c.action, c.subsystem, c.devpath, c.device, c.devname, c.devtype, JSON.stringify(storedRecord(p))]);
      }
      for (const p of rows.actions) store('action', p, [p.event_id, JSON.stringify(p)]);
      for (const p of rows.incidents) store('incident', p, [timeOf(p.at), p.kind, JSON.stringify(p)]);
      const conflicts = conflictsOf(rows, had);
      for (const c of conflicts) conflict.run(board, c.stream, c.id, now, JSON.stringify(c.stored), JSON.stringify(c.received));
      const heldEvents = had.filter((h) => h.stream === 'event').length;
      seen.run(board, now, now, rows.events.length - heldEvents);
      const total = rows.events.length + rows.actions.length + rows.incidents.length;
      return { stored: total - had.length, duplicates: had.length - conflicts.length, conflicts };
    }),
    status(board: string, state: string, version: string | undefined, now: number): void {
      status.run(board, now, now, state, version ?? null);
    },
  };
}
