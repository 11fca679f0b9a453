// The history as the outbox of forwarding: what a target has not acknowledged yet, read in
// order and in bounded batches, and the cursors that say how far it got. Three streams,
// each in id order: events (the `history --json` record, its actions with their ids),
// actions (results recorded for events already sent, such as a job's exit; an action sent
// in its event's record may come again here: the collector keeps one per id) and incidents.
import type { HistoryDb } from './db.js';
import { queryEvents, type ActionRecord, type HistoryRecord } from './query.js';
import type { IncidentRecord, IncidentKind } from './records.js';

export interface Cursors {
  eventId: number;
  actionId: number;
  incidentId: number;
}

export interface ResultRecord extends ActionRecord {
  event_id: number;
}

// `after` is the id of the item sent before it in its stream (the cursor, for the first of a
// batch): the collector chains rows by it to know it has everything up to a point, whatever
// retention deleted in between.
export type OutboxItem =
  | { stream: 'event'; id: number; after: number; record: HistoryRecord & { actions: (ActionRecord & { after: number })[] } }
  | { stream: 'action'; id: number; after: number; record: ResultRecord }
  | { stream: 'incident'; id: number; after: number; record: IncidentRecord };

function previous(db: HistoryDb, table: 'actions', id: number): number {
  return (db.prepare(`SELECT max(id) AS id FROM ${table} WHERE id < ?`).get(id) as { id: number | null }).id ?? 0;
}

export function readCursors(db: HistoryDb, target: string): Cursors {
  const row = db.prepare('SELECT event_id, action_id, incident_id FROM forward_cursors WHERE target = ?').get(target) as
    | { event_id: number; action_id: number; incident_id: number }
    | undefined;
  return { eventId: row?.event_id ?? 0, actionId: row?.action_id ?? 0, incidentId: row?.incident_id ?? 0 };
}

export function writeCursors(db: HistoryDb, target: string, cursors: Cursors): void {
  db.prepare('INSERT INTO forward_cursors (target, event_id, action_id, incident_id) VALUES (?, ?, ?, ?) ON CONFLICT (target) DO UPDATE SET event_id = excluded.event_id, action_id = excluded.action_id, incident_id = excluded.incident_id')
    .run(target, cursors.eventId, cursors.actionId, cursors.incidentId);
}

/** Forgets the cursors of targets other than `target` (none: not forwarding), so retention stops keeping rows for them. */
export function forgetOtherTargets(db: HistoryDb, target: string | undefined): void {
  db.prepare('DELETE FROM forward_cursors WHERE target IS NOT ?').run(target ?? null);
}

/** The lowest event id any forwarding target still needs (retention keeps from it on); undefined when none forwards. */
export function oldestUnforwarded(db: HistoryDb): number | undefined {
  const row = db.prepare('SELECT min(event_id) AS id FROM forward_cursors').get() as { id: number | null };
  return row.id === null ? undefined : row.id + 1;
}

/**
 * Up to `limit` items after the cursors: incidents first (rare, and they explain what
 * follows), then events, then results of events already sent, each in id order.
 */
export function readOutbox(db: HistoryDb, cursors: Cursors, limit: number): OutboxItem[] {
  const items: OutboxItem[] = [];
  const incidents = db.prepare('SELECT * FROM incidents WHERE id > ? ORDER BY id LIMIT ?').all(cursors.incidentId, limit) as { id: number; kind: IncidentKind; at: number; detail: string }[];
  let after = cursors.incidentId;
  for (const row of incidents) {
    items.push({ stream: 'incident', id: row.id, after, record: { id: row.id, kind: row.kind, at: new Date(row.at).toISOString(), detail: JSON.parse(row.detail) as Record<string, unknown> } });
    after = row.id;
  }
  after = cursors.eventId;
  for (const record of queryEvents(db, {}, { afterId: cursors.eventId })) {
    if (items.length >= limit) break;
    // An event's own actions are chained as the action stream will list them (by the row before).
    const actions = record.actions.map((a) => ({ ...a, after: previous(db, 'actions', a.id) }));
    items.push({ stream: 'event', id: record.id, after, record: { ...record, actions } });
    after = record.id;
  }
  if (items.length >= limit) return items;
  // In id order, up to the first action of an event not acknowledged yet: that one goes
  // with its event's record or after it, never skipped.
  const actions = db
    .prepare('SELECT id, event_id, kind, target, rule, ok, error, exit_code, duration_ms, finished_at FROM actions WHERE id > ? ORDER BY id LIMIT ?')
    .all(cursors.actionId, limit - items.length) as (Omit<ResultRecord, 'ok' | 'finished_at'> & { ok: number; finished_at: number })[];
  after = cursors.actionId;
  for (const { ok, finished_at, ...a } of actions) {
    if (a.event_id > cursors.eventId) break;
    items.push({ stream: 'action', id: a.id, after, record: { ...a, ok: ok === 1, finished_at: new Date(finished_at).toISOString() } });
    after = a.id;
  }
  return items;
}

/** How many events a target has not had acknowledged. */
export function eventBacklog(db: HistoryDb, cursors: Cursors): number {
  return (db.prepare('SELECT count(*) AS n FROM events WHERE id > ?').get(cursors.eventId) as { n: number }).n;
}
