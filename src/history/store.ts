// Recording events and incidents in batches, and reading them back.
import type { Statement } from 'better-sqlite3';
import type { HistoryDb } from './db.js';
import type { Uevent } from '../uevent/event.js';
import type { ActionResult } from '../actions/results.js';
import type { Plan } from '../rules/plan.js';

/** Kinds of history entries that are not device events. */
export type IncidentKind = 'seqnum-gap' | 'overflow';

export interface Incident {
  kind: IncidentKind;
  at: number;
  detail: Record<string, unknown>;
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

export interface HistoryWriterOptions {
  /** Commit when this many rows are waiting. */
  batchSize?: number;
  /** Commit at the latest this long after the first waiting row. */
  flushDelayMs?: number;
  onError?(error: Error, rows: number): void;
}

// Many rows per statement: the per-statement cost is then paid once per 50 rows.
const ROWS_PER_INSERT = 50;
const EVENT_COLUMNS = 'id, seqnum, action, devpath, subsystem, devtype, devname, driver, major, minor, source, received_at, properties, result';

function insertEventsSql(rows: number): string {
  const row = `(${Array(14).fill('?').join(', ')})`;
  return `INSERT INTO events (${EVENT_COLUMNS}) VALUES ${Array(rows).fill(row).join(', ')}`;
}

interface PendingEvent {
  id: number;
  event: Uevent;
  result: string | null;
  rules: string[];
}

/** The rules' changes to an event, or null when they changed nothing. */
export function eventResult(event: Uevent, plan: Plan | undefined, rules: readonly string[]): EventResult | null {
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

interface PendingAction {
  eventId: number;
  result: ActionResult;
  at: number;
}

function pushEventValues(values: unknown[], { id, event: e, result }: PendingEvent): unknown[] {
  values.push(
    id, e.seqnum ?? null, e.action, e.devpath, e.subsystem, e.devtype ?? null, e.devname ?? null,
    e.driver ?? null, e.major ?? null, e.minor ?? null, e.source, e.receivedAt, JSON.stringify(e.properties), result,
  );
  return values;
}

/** Buffers rows and commits them in one transaction per batch, so a storm costs few fsyncs. */
export class HistoryWriter {
  #db: HistoryDb;
  #insertEvent: Statement;
  #insertEvents: Statement;
  #insertIncident: Statement;
  #insertAction: Statement;
  #insertRuleMatch: Statement;
  #events: PendingEvent[] = [];
  #actions: PendingAction[] = [];
  // Ids are given here, not by SQLite, so actions can name their event before it is committed.
  #nextEventId: number;
  #incidents: Incident[] = [];
  #timer: NodeJS.Timeout | undefined;
  #batchSize: number;
  #flushDelayMs: number;
  #onError: (error: Error, rows: number) => void;
  committed = 0;
  failed = 0;

  constructor(db: HistoryDb, options: HistoryWriterOptions = {}) {
    this.#db = db;
    this.#batchSize = options.batchSize ?? 2000;
    this.#flushDelayMs = options.flushDelayMs ?? 5;
    this.#onError = options.onError ?? (() => {});
    this.#insertEvent = db.prepare(insertEventsSql(1));
    this.#insertEvents = db.prepare(insertEventsSql(ROWS_PER_INSERT));
    this.#insertIncident = db.prepare('INSERT INTO incidents (kind, at, detail) VALUES (?, ?, ?)');
    this.#insertAction = db.prepare(
      `INSERT INTO actions (event_id, kind, target, rule, ok, error, exit_code, signal, timed_out, duration_ms, argv, stdout, stderr, finished_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.#insertRuleMatch = db.prepare('INSERT INTO rule_matches (event_id, rule) VALUES (?, ?)');
    this.#nextEventId = (db.prepare('SELECT coalesce(max(id), 0) + 1 AS next FROM events').get() as { next: number }).next;
  }

  get pending(): number {
    return this.#events.length + this.#incidents.length + this.#actions.length;
  }

  /** The id the last recorded event got (committed or not). */
  get lastEventId(): number {
    return this.#nextEventId - 1;
  }

  /** Queues the event (with what its rules did) and returns the id its row will have. */
  recordEvent(event: Uevent, processing: { plan?: Plan | undefined; rules?: string[]; note?: string } = {}): number {
    const id = this.#nextEventId++;
    const rules = processing.rules ?? [];
    const result = processing.note ? { properties: {}, symlinks: [], tags: [], note: processing.note } : eventResult(event, processing.plan, rules);
    this.#events.push({ id, event, result: result && JSON.stringify(result), rules });
    this.#schedule();
    return id;
  }

  /** Queues the outcome of one action of the event with this id. */
  recordAction(eventId: number, result: ActionResult, at = Date.now()): void {
    this.#actions.push({ eventId, result, at });
    this.#schedule();
  }

  recordIncident(incident: Incident): void {
    this.#incidents.push(incident);
    this.#schedule();
  }

  /** Commits everything waiting now. On failure the batch is counted and reported, not retried. */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const events = this.#events;
    const incidents = this.#incidents;
    const actions = this.#actions;
    if (events.length === 0 && incidents.length === 0 && actions.length === 0) return;
    this.#events = [];
    this.#incidents = [];
    this.#actions = [];
    try {
      this.#db.transaction(() => {
        let i = 0;
        for (; i + ROWS_PER_INSERT <= events.length; i += ROWS_PER_INSERT) {
          const values: unknown[] = [];
          for (let j = i; j < i + ROWS_PER_INSERT; j++) pushEventValues(values, events[j]!);
          this.#insertEvents.run(values);
        }
        for (; i < events.length; i++) this.#insertEvent.run(pushEventValues([], events[i]!));
        for (const { id, rules } of events) for (const rule of rules) this.#insertRuleMatch.run(id, rule);
        for (const i of incidents) this.#insertIncident.run(i.kind, i.at, JSON.stringify(i.detail));
        for (const { eventId, result: r, at } of actions) {
          this.#insertAction.run(
            eventId, r.kind, r.target, r.rule, r.ok ? 1 : 0, r.error, r.exitCode ?? null, r.signal ?? null,
            r.timedOut === undefined ? null : r.timedOut ? 1 : 0, r.durationMs, r.argv ? JSON.stringify(r.argv) : null,
            r.stdout ?? null, r.stderr ?? null, at,
          );
        }
      })();
      this.committed += events.length + incidents.length + actions.length;
    } catch (error) {
      const rows = events.length + incidents.length + actions.length;
      this.failed += rows;
      this.#onError(error as Error, rows);
    }
  }

  #schedule(): void {
    if (this.pending >= this.#batchSize) this.flush();
    else this.#timer ??= setTimeout(() => this.flush(), this.#flushDelayMs);
  }
}

interface EventRow extends Omit<EventRecord, 'received_at' | 'properties'> {
  received_at: number;
  properties: string;
  result?: string | null;
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
    properties: JSON.parse(row.properties) as Record<string, string>,
  };
}

/** The kernel's properties with the rules' changes, as subscribers see an event. */
export function toProcessedRecord(row: EventRow, rules: string[]): ProcessedRecord {
  const record = toEventRecord(row);
  const result = row.result ? (JSON.parse(row.result) as EventResult) : null;
  if (result) {
    for (const key of result.removed ?? []) delete record.properties[key];
    Object.assign(record.properties, result.properties);
  }
  return { ...record, symlinks: result?.symlinks ?? [], tags: result?.tags ?? [], rules };
}

/** The subscriber record of an event just processed: the same shape replay reads back. */
export function processedRecord(id: number, event: Uevent, plan: Plan | undefined, rules: string[]): ProcessedRecord {
  const result = eventResult(event, plan, rules);
  const e = event;
  const row: EventRow = {
    id, seqnum: e.seqnum ?? null, action: e.action, devpath: e.devpath, subsystem: e.subsystem, devtype: e.devtype ?? null,
    devname: e.devname ?? null, driver: e.driver ?? null, major: e.major ?? null, minor: e.minor ?? null, source: e.source,
    received_at: e.receivedAt, properties: JSON.stringify(e.properties), result: result && JSON.stringify(result),
  };
  return toProcessedRecord(row, rules);
}

/** Recorded events with ids in (afterId, upToId], oldest first, in pages of `page`. */
export function* iterateProcessed(db: HistoryDb, afterId: number, upToId: number, page = 500): Generator<ProcessedRecord> {
  const events = db.prepare('SELECT * FROM events WHERE id > ? AND id <= ? ORDER BY id LIMIT ?');
  const matches = db.prepare('SELECT event_id, rule FROM rule_matches WHERE event_id > ? AND event_id <= ? ORDER BY rowid');
  for (let from = afterId; from < upToId; ) {
    const rows = events.all(from, upToId, page) as EventRow[];
    if (rows.length === 0) return;
    const last = rows[rows.length - 1]!.id;
    const rules = new Map<number, string[]>();
    for (const m of matches.all(from, last) as { event_id: number; rule: string }[]) {
      let list = rules.get(m.event_id);
      if (!list) rules.set(m.event_id, (list = []));
      list.push(m.rule);
    }
    for (const row of rows) yield toProcessedRecord(row, rules.get(row.id) ?? []);
    from = last;
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
