// The queries of a collected fleet database, written once for SQLite and PostgreSQL: the SQL
// is the same but for placeholders (`?` here; the PostgreSQL runner numbers them) and globs.
import { chainFrom } from './protocol.js';
import { globToRegex, toHistoryRecord, type BoardRecord, type FleetDevice, type FleetFilter, type Marks } from './records.js';
import type { HistoryRecord } from '../history/query.js';

/** Runs one statement with `?` placeholders; rows as objects. */
export interface SqlRunner {
  readonly dialect: 'sqlite' | 'postgres';
  all<T>(sql: string, params: readonly unknown[]): Promise<T[]>;
}

const PAGE = 500;

function where(run: SqlRunner, filter: FleetFilter): { sql: string; params: unknown[] } {
  const clauses = ['board = ?'];
  const params: unknown[] = [filter.board];
  const anyOf = (values: readonly string[] | undefined, clause: string, map: (v: string) => string = (v) => v) => {
    if (!values?.length) return;
    clauses.push(`(${values.map(() => clause).join(' OR ')})`);
    params.push(...values.map(map));
  };
  if (filter.since !== undefined) (clauses.push('received_at >= ?'), params.push(filter.since));
  if (filter.until !== undefined) (clauses.push('received_at < ?'), params.push(filter.until));
  anyOf(filter.actions, 'action = ?');
  if (run.dialect === 'sqlite') anyOf(filter.subsystems, 'subsystem GLOB ?');
  else anyOf(filter.subsystems, 'subsystem ~ ?', globToRegex);
  anyOf(filter.devices, 'device = ?');
  anyOf(filter.devpaths, 'devpath = ?');
  return { sql: clauses.join(' AND '), params };
}

/** A board's events with their actions (see FleetStore.events), read a page at a time. */
export async function* fleetEvents(run: SqlRunner, filter: FleetFilter, limit?: number): AsyncGenerator<HistoryRecord> {
  const w = where(run, filter);
  if (limit !== undefined) {
    const rows = await run.all<{ id: number; record: unknown }>(`SELECT id, record FROM fleet_events WHERE ${w.sql} ORDER BY id DESC LIMIT ?`, [...w.params, limit]);
    rows.reverse();
    for (let i = 0; i < rows.length; i += PAGE) yield* withActions(run, filter.board, rows.slice(i, i + PAGE));
    return;
  }
  for (let after = 0; ;) {
    const rows = await run.all<{ id: number; record: unknown }>(`SELECT id, record FROM fleet_events WHERE ${w.sql} AND id > ? ORDER BY id LIMIT ${PAGE}`, [...w.params, after]);
    yield* withActions(run, filter.board, rows);
    if (rows.length < PAGE) return;
    after = rows[rows.length - 1]!.id;
  }
}

async function* withActions(run: SqlRunner, board: string, rows: { id: number; record: unknown }[]): AsyncGenerator<HistoryRecord> {
  if (rows.length === 0) return;
  const actions = await run.all<{ event_id: number; record: unknown }>(
    `SELECT event_id, record FROM fleet_actions WHERE board = ? AND event_id IN (${rows.map(() => '?').join(',')}) ORDER BY id`,
    [board, ...rows.map((r) => r.id)],
  );
  const byEvent = new Map<number, unknown[]>();
  for (const a of actions) byEvent.set(a.event_id, [...(byEvent.get(a.event_id) ?? []), a.record]);
  for (const row of rows) yield toHistoryRecord(row.record, byEvent.get(row.id) ?? []);
}

export async function fleetDevices(run: SqlRunner, board: string, key?: string): Promise<FleetDevice[]> {
  return run.all<FleetDevice>(
    `SELECT device AS key, min(received_at) AS first_seen, max(received_at) AS last_seen FROM fleet_events
     WHERE board = ? AND ${key === undefined ? 'device IS NOT NULL' : 'device = ?'} GROUP BY device ORDER BY last_seen DESC, key`,
    key === undefined ? [board] : [board, key],
  );
}

export async function devpathsNamed(run: SqlRunner, board: string, name: string): Promise<string[]> {
  const suffix = `%/${name.replace(/[\\%_]/g, (c) => `\\${c}`)}`;
  const rows = await run.all<{ devpath: string; devname: string | null }>(
    `SELECT devpath, devname FROM fleet_events WHERE board = ? AND (devpath = ? OR devname = ? OR devname = ? OR devpath LIKE ? ESCAPE '\\')
     ORDER BY id DESC LIMIT 100`,
    [board, name, name, `/dev/${name}`, suffix],
  );
  // LIKE ignores case in SQLite: the exact test is here.
  const named = rows.filter((r) => r.devpath === name || r.devname === name || r.devname === `/dev/${name}` || r.devpath.endsWith(`/${name}`));
  return [...new Set(named.map((r) => r.devpath))];
}

export async function fleetBoards(run: SqlRunner): Promise<BoardRecord[]> {
  const boards = await run.all<BoardRecord>('SELECT name, first_seen, last_seen, status, version, events FROM boards ORDER BY name', []);
  // Databases collected before conflicts were kept have no such table (read-only, it is not made): none, then.
  const hasTable = run.dialect === 'sqlite' ? "SELECT 1 AS ok FROM sqlite_master WHERE name = 'fleet_conflicts'" : "SELECT 1 AS ok WHERE to_regclass('fleet_conflicts') IS NOT NULL";
  const conflicts = new Map<string, number>();
  if ((await run.all(hasTable, [])).length > 0) {
    for (const row of await run.all<{ board: string; n: number }>('SELECT board, count(*) AS n FROM fleet_conflicts GROUP BY board', [])) conflicts.set(row.board, Number(row.n));
  }
  return boards.map((b) => ({ ...b, conflicts: conflicts.get(b.name) ?? 0 }));
}

const CHAIN_PAGE = 5000;

/** Where a board's chain of rows in `table` reaches from `mark` (protocol.ts chainFrom: the lowest successor each time). */
export async function chainEnd(run: SqlRunner, table: 'fleet_events' | 'fleet_actions' | 'fleet_incidents', board: string, mark: number): Promise<number> {
  let current = mark;
  for (;;) {
    // A row's id is above the one it names: the rows that go on from `current` are among the
    // next ids, read on the primary key (in id order, so the lowest successor comes first).
    const rows = await run.all<{ id: number; after_id: number }>(`SELECT id, after_id FROM ${table} WHERE board = ? AND id > ? ORDER BY id LIMIT ${CHAIN_PAGE}`, [board, current]);
    current = chainFrom(current, rows.map((r): [number, number] => [r.id, r.after_id]));
    // The page was all there is, or the chain stopped inside it: that is where it ends.
    if (rows.length < CHAIN_PAGE || current < rows[rows.length - 1]!.id) return current;
  }
}

/** Advances a board's marks (see FleetStore.advanceMarks) and stores them. */
export async function advanceFleetMarks(run: SqlRunner, board: string): Promise<Marks> {
  const [row] = await run.all<{ event_mark: number; action_mark: number; incident_mark: number }>('SELECT event_mark, action_mark, incident_mark FROM boards WHERE name = ?', [board]);
  if (row === undefined) return { event_id: 0, action_id: 0, incident_id: 0 };
  const marks = {
    event_id: await chainEnd(run, 'fleet_events', board, row.event_mark),
    action_id: await chainEnd(run, 'fleet_actions', board, row.action_mark),
    incident_id: await chainEnd(run, 'fleet_incidents', board, row.incident_mark),
  };
  await keepFleetMarks(run, board, marks);
  return marks;
}

/** Stores a board's marks; they only move on (another collector sharing the database may have moved them further). */
export async function keepFleetMarks(run: SqlRunner, board: string, marks: Marks): Promise<void> {
  await run.all(
    `UPDATE boards SET event_mark = ${greatest(run)}(event_mark, ?), action_mark = ${greatest(run)}(action_mark, ?), incident_mark = ${greatest(run)}(incident_mark, ?) WHERE name = ?`,
    [marks.event_id, marks.action_id, marks.incident_id, board],
  );
}

/** The larger of two values: max() in SQLite, GREATEST() in PostgreSQL. */
export const greatest = (run: { dialect: SqlRunner['dialect'] }) => (run.dialect === 'sqlite' ? 'max' : 'GREATEST');

/** The reading half of a FleetStore, the same over either database: its runner decides. */
export abstract class FleetQueries {
  protected abstract readonly run: SqlRunner;

  advanceMarks(board: string): Promise<Marks> {
    return advanceFleetMarks(this.run, board);
  }

  keepMarks(board: string, marks: Marks): Promise<void> {
    return keepFleetMarks(this.run, board, marks);
  }

  boards(): Promise<BoardRecord[]> {
    return fleetBoards(this.run);
  }

  events(filter: FleetFilter, limit?: number): AsyncGenerator<HistoryRecord> {
    return fleetEvents(this.run, filter, limit);
  }

  devices(board: string, key?: string): Promise<FleetDevice[]> {
    return fleetDevices(this.run, board, key);
  }

  devpathsNamed(board: string, name: string): Promise<string[]> {
    return devpathsNamed(this.run, board, name);
  }
}
