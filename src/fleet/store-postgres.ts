// A collected fleet database in PostgreSQL (`hotplugd collect --db postgres://...`), for fleets
// too large for one SQLite file or collectors that share one database. The same tables and
// queries as SQLite (fleet-queries.ts); each payload is stored by one statement, so one round
// trip and one commit. Records are `json` (kept as the boards wrote them, still queryable with
// ->>); times are epoch milliseconds, as on the boards.
import type pg from 'pg';
import { HotplugError } from '../errors.js';
import { FleetQueries, type SqlRunner } from './queries.js';
import { batchRows, conflictsOf, eventColumns, storedRecord, timeOf, type Conflict, type FleetStore, type Payload, type StoreOutcome } from './records.js';

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS boards (
    name        TEXT PRIMARY KEY,
    first_seen  BIGINT NOT NULL,
    last_seen   BIGINT NOT NULL,
    status      TEXT,
    version     TEXT,
    events      BIGINT NOT NULL DEFAULT 0,
    event_mark    BIGINT NOT NULL DEFAULT 0,
    action_mark   BIGINT NOT NULL DEFAULT 0,
    incident_mark BIGINT NOT NULL DEFAULT 0
  );
  CREATE TABLE IF NOT EXISTS fleet_events (
    board       TEXT NOT NULL,
    id          BIGINT NOT NULL,
    after_id    BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    action      TEXT NOT NULL,
    subsystem   TEXT NOT NULL,
    devpath     TEXT NOT NULL,
    device      TEXT,
    devname     TEXT,
    devtype     TEXT,
    record      JSON NOT NULL,
    PRIMARY KEY (board, id)
  );
  CREATE INDEX IF NOT EXISTS fleet_events_time ON fleet_events (received_at);
  CREATE INDEX IF NOT EXISTS fleet_events_device ON fleet_events (board, device);
  CREATE INDEX IF NOT EXISTS fleet_events_devpath ON fleet_events (board, devpath);
  CREATE TABLE IF NOT EXISTS fleet_actions (
    board       TEXT NOT NULL,
    id          BIGINT NOT NULL,
    after_id    BIGINT NOT NULL,
    event_id    BIGINT NOT NULL,
    record      JSON NOT NULL,
    PRIMARY KEY (board, id)
  );
  CREATE INDEX IF NOT EXISTS fleet_actions_event ON fleet_actions (board, event_id);
  CREATE TABLE IF NOT EXISTS fleet_incidents (
    board       TEXT NOT NULL,
    id          BIGINT NOT NULL,
    after_id    BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    record      JSON NOT NULL,
    PRIMARY KEY (board, id)
  );
  -- The chains are walked by id (after_id < id): no index of their own, which every row would pay for.
  DROP INDEX IF EXISTS fleet_events_after;
  DROP INDEX IF EXISTS fleet_actions_after;
  DROP INDEX IF EXISTS fleet_incidents_after;
  CREATE TABLE IF NOT EXISTS fleet_conflicts (
    board       TEXT NOT NULL,
    stream      TEXT NOT NULL,
    id          BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    stored      JSON NOT NULL,
    received    JSON NOT NULL
  );
  CREATE INDEX IF NOT EXISTS fleet_conflicts_board ON fleet_conflicts (board, id);`;

// One message's records in one statement (one round trip, one commit): each table's columns
// come as a JSON array and its records as one text of lines, zipped by position (the records
// are parsed once, by their cast to json, not once more inside an array), and their ids as
// arrays, looked up one by one on the primary key (the LIMIT keeps the planner from turning the
// lookups into a join that reads all of a board's rows per message: it did, on tables it had not
// analysed yet); what the tables held of those ids before is returned (all parts of a statement
// see the same snapshot), to tell new rows, duplicates and conflicts apart. A row seen again
// keeps its record; its link to the chain takes the lower predecessor.
const relink = (table: string) => `ON CONFLICT (board, id) DO UPDATE SET after_id = excluded.after_id WHERE excluded.after_id < ${table}.after_id`;
const zipped = (columns: string, json: string, lines: string) => {
  const names = columns.split(', ').map((c) => c.split(' ')[0]).join(', ');
  return `SELECT ${names}, line::json AS record FROM ROWS FROM (json_to_recordset(${json}::json) AS (${columns}), string_to_table(${lines}::text, E'\\n')) AS x(${names}, line)`;
};
const STORE_BATCH = `
  WITH ev AS (${zipped('id bigint, after_id bigint, received_at bigint, action text, subsystem text, devpath text, device text, devname text, devtype text', '$2', '$9')}),
    ac AS (${zipped('id bigint, after_id bigint, event_id bigint', '$3', '$10')}),
    inc AS (${zipped('id bigint, after_id bigint, at bigint, kind text', '$4', '$11')}),
    held AS (
      SELECT 'event' AS stream, t.id, t.record::text AS record FROM unnest($6::bigint[]) k(id), LATERAL (SELECT id, record FROM fleet_events WHERE board = $1 AND id = k.id LIMIT 1) t
      UNION ALL SELECT 'action', t.id, t.record::text FROM unnest($7::bigint[]) k(id), LATERAL (SELECT id, record FROM fleet_actions WHERE board = $1 AND id = k.id LIMIT 1) t
      UNION ALL SELECT 'incident', t.id, t.record::text FROM unnest($8::bigint[]) k(id), LATERAL (SELECT id, record FROM fleet_incidents WHERE board = $1 AND id = k.id LIMIT 1) t),
    e AS (INSERT INTO fleet_events (board, id, after_id, received_at, action, subsystem, devpath, device, devname, devtype, record)
      SELECT $1, id, after_id, received_at, action, subsystem, devpath, device, devname, devtype, record FROM ev ${relink('fleet_events')}),
    a AS (INSERT INTO fleet_actions (board, id, after_id, event_id, record) SELECT $1, id, after_id, event_id, record FROM ac ${relink('fleet_actions')}),
    i AS (INSERT INTO fleet_incidents (board, id, after_id, at, kind, record) SELECT $1, id, after_id, at, kind, record FROM inc ${relink('fleet_incidents')}),
    b AS (INSERT INTO boards (name, first_seen, last_seen, events)
      VALUES ($1, $5, $5, (SELECT count(*) FROM ev) - (SELECT count(*) FROM held WHERE stream = 'event'))
      ON CONFLICT (name) DO UPDATE SET last_seen = GREATEST(boards.last_seen, excluded.last_seen), events = boards.events + excluded.events)
  SELECT stream, id, record FROM held`;

/** The statement that stores one message's records (named: parsed and planned once per connection). */
export function storeStatement(board: string, records: readonly Payload[], now: number): { rows: ReturnType<typeof batchRows>; statement: { name: string; text: string; values: unknown[] } } {
  const rows = batchRows(records);
  const events = rows.events.map((p) => {
    const c = eventColumns(p);
    return { id: p.id, after_id: p.after, received_at: c.receivedAt, action: c.action, subsystem: c.subsystem, devpath: c.devpath, device: c.device, devname: c.devname, devtype: c.devtype };
  });
  const actions = rows.actions.map((p) => ({ id: p.id, after_id: p.after, event_id: p.event_id }));
  const incidents = rows.incidents.map((p) => ({ id: p.id, after_id: p.after, at: timeOf(p.at), kind: p.kind }));
  // JSON.stringify writes no line breaks: one record per line. None for no records (a strict function: no rows).
  const lines = (records: readonly object[]) => (records.length === 0 ? null : records.map((r) => JSON.stringify(r)).join('\n'));
  const values = [board, JSON.stringify(events), JSON.stringify(actions), JSON.stringify(incidents), now, rows.events.map((p) => p.id), rows.actions.map((p) => p.id), rows.incidents.map((p) => p.id),
    lines(rows.events.map(storedRecord)), lines(rows.actions), lines(rows.incidents)];
  return { rows, statement: { name: 'hotplugd-store-batch', text: STORE_BATCH, values } };
}

/** The URL without its password, for messages. */
export function postgresLocation(url: string): string {
  // Not new URL(): postgres://user@/db?host=/run/postgresql (a unix socket) has no host.
  return url.replace(/^(postgres(?:ql)?:\/\/[^:@/]*):[^@/]*@/, '$1@');
}

export class PostgresFleet extends FleetQueries implements FleetStore {
  readonly location: string;
  #pool: pg.Pool;
  protected readonly run: SqlRunner;

  private constructor(url: string, pool: pg.Pool) {
    super();
    this.location = postgresLocation(url);
    this.#pool = pool;
    const numbered = new Map<string, string>();
    this.run = {
      dialect: 'postgres',
      async all<T>(sql: string, params: readonly unknown[]): Promise<T[]> {
        let text = numbered.get(sql);
        if (text === undefined) {
          let n = 0;
          numbered.set(sql, (text = sql.replace(/\?/g, () => `$${++n}`)));
        }
        return (await pool.query(text, params as unknown[])).rows as T[];
      },
    };
  }

  /** Connects (and, unless readonly, creates the tables); a clear error when it cannot. */
  static async open(url: string, options: { readonly?: boolean; onError?: (error: Error) => void; connections?: number } = {}): Promise<PostgresFleet> {
    // Loaded here, not at start: a daemon or a SQLite collector never pays for it.
    const { default: client } = await import('pg');
    // bigint comes back as a number: ids and epoch milliseconds are far below 2^53.
    const types = { getTypeParser: (oid: number, format?: 'text' | 'binary') => (oid === 20 ? Number : client.types.getTypeParser(oid, format as 'text')) };
    const pool = new client.Pool({
      connectionString: url,
      // One per collector connection storing at once, and one for marks and queries.
      max: (options.connections ?? 1) + 1,
      types,
      application_name: 'hotplugd',
      ...(options.readonly ? { options: '-c default_transaction_read_only=on' } : {}),
    });
    // An idle connection that dies (the server restarts) is replaced at the next query.
    pool.on('error', (error) => options.onError?.(error));
    const fleet = new PostgresFleet(url, pool);
    try {
      const client = await pool.connect();
      try {
        if (options.readonly) {
          const { rows } = await client.query("SELECT to_regclass('fleet_events') IS NOT NULL AS ok");
          if (!rows[0].ok) throw new HotplugError('EUSAGE', `${fleet.location} is not a collected fleet database (hotplugd collect --db)`);
        } else {
          // Collectors starting together each create the tables: one at a time.
          await client.query('BEGIN');
          await client.query("SELECT pg_advisory_xact_lock(hashtext('hotplugd fleet schema'))");
          await client.query(SCHEMA);
          await client.query('COMMIT');
        }
      } finally {
        client.release();
      }
    } catch (error) {
      await pool.end().catch(() => undefined);
      if (error instanceof HotplugError) throw error;
      throw new HotplugError('EDB', `Failed to open the fleet database ${fleet.location}: ${(error as Error).message}`, { cause: error });
    }
    return fleet;
  }

  async storeBatch(board: string, records: readonly Payload[], now: number): Promise<StoreOutcome> {
    const { rows, statement } = storeStatement(board, records, now);
    // One statement, committed on its own. The conflicts after it: if that fails, the message is
    // not acknowledged, comes again and shows the same conflicts.
    const { rows: held } = await this.#pool.query(statement);
    const conflicts = conflictsOf(rows, held as { stream: Conflict['stream']; id: number; record: string }[]);
    if (conflicts.length > 0) {
      await this.#pool.query(
        'INSERT INTO fleet_conflicts (board, stream, id, at, stored, received) SELECT $1, stream, id, $2, stored, received FROM json_to_recordset($3::json) AS x(stream text, id bigint, stored json, received json)',
        [board, now, JSON.stringify(conflicts)],
      );
    }
    const total = rows.events.length + rows.actions.length + rows.incidents.length;
    return { stored: total - held.length, duplicates: held.length - conflicts.length, conflicts };
  }

  async status(board: string, state: string, version: string | undefined, now: number): Promise<void> {
    await this.#pool.query(
      `INSERT INTO boards (name, first_seen, last_seen, status, version) VALUES ($1, $2, $2, $3, $4)
       ON CONFLICT (name) DO UPDATE SET status = excluded.status, version = coalesce(excluded.version, boards.version)`,
      [board, now, state, version ?? null],
    );
  }


  async close(): Promise<void> {
    await this.#pool.end();
  }
}
