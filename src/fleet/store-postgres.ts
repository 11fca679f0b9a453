// A collected fleet database in PostgreSQL (`hotplugd collect --db postgres://...`), for fleets
// too large for one SQLite file or collectors that share one database. The same tables and
// queries as SQLite (fleet-queries.ts); each payload is stored by one statement, so one round
// trip and one commit. Records are `json` (kept as the boards wrote them, still queryable with
// ->>); times are epoch milliseconds, as on the boards.
import type pg from 'pg';
import { HotplugError } from '../errors.js';
import { FleetQueries, type SqlRunner } from './queries.js';
import { eventActions, eventColumns, timeOf, type FleetStore, type Payload } from './records.js';

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
  CREATE INDEX IF NOT EXISTS fleet_events_after ON fleet_events (board, after_id);
  CREATE TABLE IF NOT EXISTS fleet_actions (
    board       TEXT NOT NULL,
    id          BIGINT NOT NULL,
    after_id    BIGINT NOT NULL,
    event_id    BIGINT NOT NULL,
    record      JSON NOT NULL,
    PRIMARY KEY (board, id)
  );
  CREATE INDEX IF NOT EXISTS fleet_actions_event ON fleet_actions (board, event_id);
  CREATE INDEX IF NOT EXISTS fleet_actions_after ON fleet_actions (board, after_id);
  CREATE TABLE IF NOT EXISTS fleet_incidents (
    board       TEXT NOT NULL,
    id          BIGINT NOT NULL,
    after_id    BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    kind        TEXT NOT NULL,
    record      JSON NOT NULL,
    PRIMARY KEY (board, id)
  );
  CREATE INDEX IF NOT EXISTS fleet_incidents_after ON fleet_incidents (board, after_id);`;

// A row seen again keeps its record; its link to the chain takes the lower predecessor. The
// RETURNING tells a new row (xmax = 0) from a relinked one; a row left as it was returns nothing.
const relink = (table: string) => `ON CONFLICT (board, id) DO UPDATE SET after_id = excluded.after_id WHERE excluded.after_id < ${table}.after_id RETURNING (xmax = 0) AS inserted`;
const counted = `, seen AS (INSERT INTO boards (name, first_seen, last_seen, events) VALUES ($1, $3, $3, $4 * (SELECT count(*) FROM ins WHERE inserted))
    ON CONFLICT (name) DO UPDATE SET last_seen = GREATEST(boards.last_seen, excluded.last_seen), events = boards.events + excluded.events)
  SELECT coalesce(bool_or(inserted), false) AS stored FROM ins`;
const STORE = {
  event: `WITH ins AS (INSERT INTO fleet_events (board, id, after_id, received_at, action, subsystem, devpath, device, devname, devtype, record)
      VALUES ($1, $2, $5, $6, $7, $8, $9, $10, $11, $12, $13) ${relink('fleet_events')}),
    acts AS (INSERT INTO fleet_actions (board, id, after_id, event_id, record)
      SELECT $1, (a->>'id')::bigint, (a->>'after')::bigint, $2, a FROM json_array_elements($14::json) a ${relink('fleet_actions')})${counted}`,
  action: `WITH ins AS (INSERT INTO fleet_actions (board, id, after_id, event_id, record) VALUES ($1, $2, $5, $6, $7) ${relink('fleet_actions')})${counted}`,
  incident: `WITH ins AS (INSERT INTO fleet_incidents (board, id, after_id, at, kind, record) VALUES ($1, $2, $5, $6, $7, $8) ${relink('fleet_incidents')})${counted}`,
};


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
  static async open(url: string, options: { readonly?: boolean; onError?: (error: Error) => void } = {}): Promise<PostgresFleet> {
    // Loaded here, not at start: a daemon or a SQLite collector never pays for it.
    const { default: client } = await import('pg');
    // bigint comes back as a number: ids and epoch milliseconds are far below 2^53.
    const types = { getTypeParser: (oid: number, format?: 'text' | 'binary') => (oid === 20 ? Number : client.types.getTypeParser(oid, format as 'text')) };
    const pool = new client.Pool({
      connectionString: url,
      max: 2,
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

  async store(board: string, p: Payload, now: number): Promise<boolean> {
    const head = [board, p.id, now, p.type === 'event' ? 1 : 0, p.after];
    let params: unknown[];
    if (p.type === 'event') {
      const c = eventColumns(p);
      params = [...head, c.receivedAt, c.action, c.subsystem, c.devpath, c.device, c.devname, c.devtype, JSON.stringify(p), JSON.stringify(eventActions(p))];
    } else if (p.type === 'action') params = [...head, p.event_id, JSON.stringify(p)];
    else params = [...head, timeOf(p.at), p.kind, JSON.stringify(p)];
    const { rows } = await this.#pool.query(STORE[p.type as keyof typeof STORE], params);
    return rows[0].stored as boolean;
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
