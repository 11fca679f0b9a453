// What a collected fleet database holds and answers, whichever database it is in (SQLite,
// fleet-sqlite.ts, or PostgreSQL, fleet-postgres.ts): the payloads boards forward (checked
// here before anything is stored), the boards, and the queries the CLI asks of them.
// Pure: no I/O.
import type { ActionRecord, HistoryRecord } from '../history/query.js';

/** The largest payload taken: a history record with 8 KiB outputs is far below it. */
export const MAX_PAYLOAD_BYTES = 256 * 1024;

export type Payload = Record<string, unknown>;

export interface Marks {
  event_id: number;
  action_id: number;
  incident_id: number;
}

export interface BoardRecord {
  name: string;
  first_seen: number;
  last_seen: number;
  status: string | null;
  version: string | null;
  events: number;
  /** Records received for ids already held, with other content (fleet_conflicts). */
  conflicts: number;
}

/** A physical device a board's events name (its identity key), with when it was seen. */
export interface FleetDevice {
  key: string;
  first_seen: number;
  last_seen: number;
}

export interface FleetFilter {
  board: string;
  /** Epoch ms, inclusive. */
  since?: number | undefined;
  /** Epoch ms, exclusive. */
  until?: number | undefined;
  actions?: string[] | undefined;
  /** Subsystem globs (any may match). */
  subsystems?: string[] | undefined;
  /** Identity keys (usb:0781:5583:SERIAL): the events of these devices. */
  devices?: string[] | undefined;
  devpaths?: string[] | undefined;
}

/** A record for a (board, id) the collector holds already, with other content: kept beside it, not dropped in silence. */
export interface Conflict {
  stream: 'event' | 'action' | 'incident';
  id: number;
  stored: Payload;
  received: Payload;
}

/** What storing one message's records did. */
export interface StoreOutcome {
  /** Records new to the database. */
  stored: number;
  /** Records it held already, with the same content. */
  duplicates: number;
  conflicts: Conflict[];
}

/** A collected fleet database: one interface over SQLite and PostgreSQL. */
export interface FleetStore {
  /** Where it is, for messages: a path, or postgres://host/db without the password. */
  readonly location: string;
  /** Stores one message's checked records of a board in one transaction. */
  storeBatch(board: string, records: readonly Payload[], now: number): Promise<StoreOutcome>;
  status(board: string, state: string, version: string | undefined, now: number): Promise<void>;
  /** Moves a board's marks along the chains of rows it has (each row names the one before it). */
  advanceMarks(board: string): Promise<Marks>;
  /** Keeps marks the collector worked out itself (they only move on). */
  keepMarks(board: string, marks: Marks): Promise<void>;
  boards(): Promise<BoardRecord[]>;
  /** A board's events oldest first (with `limit`, the newest that many), each with every action known for it. */
  events(filter: FleetFilter, limit?: number): AsyncGenerator<HistoryRecord>;
  /** The devices a board's events name (or only the one with identity `key`), most recently seen first. */
  devices(board: string, key?: string): Promise<FleetDevice[]>;
  /** The devpaths of a board's events named NAME (a devname, /dev/NAME or a devpath's last part), newest first. */
  devpathsNamed(board: string, name: string): Promise<string[]>;
  close(): Promise<void>;
}

const isId = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) > 0;
export const isText = (value: unknown): value is string => typeof value === 'string';
export const timeOf = (value: unknown): number | undefined => (isText(value) && !Number.isNaN(Date.parse(value)) ? Date.parse(value) : undefined);

/** The most records one message may carry. */
export const MAX_BATCH_RECORDS = 1000;

/**
 * Checks one message from PREFIX/<board>/events: a batch (`{"type":"batch","records":[...]}`) or,
 * as boards before batches sent them, one record. The records that can be stored, and why each
 * of the others is refused.
 */
export function checkMessage(board: string, bytes: Buffer): { records: Payload[]; refused: string[] } {
  if (bytes.length > MAX_PAYLOAD_BYTES) return { records: [], refused: [`oversized: ${bytes.length} bytes (at most ${MAX_PAYLOAD_BYTES})`] };
  let message: unknown;
  try {
    message = JSON.parse(bytes.toString('utf8'));
  } catch {
    return { records: [], refused: ['not JSON'] };
  }
  if (typeof message !== 'object' || message === null || Array.isArray(message)) return { records: [], refused: ['not a JSON object'] };
  const m = message as Payload;
  if (m.type !== 'batch') {
    const checked = checkRecord(board, m);
    return 'refused' in checked ? { records: [], refused: [checked.refused] } : { records: [checked.payload], refused: [] };
  }
  if (m.board !== board) return { records: [], refused: [`its board ${JSON.stringify(m.board)} is not the topic's ${JSON.stringify(board)}`] };
  if (!Array.isArray(m.records) || m.records.length > MAX_BATCH_RECORDS) return { records: [], refused: [`a batch without a list of at most ${MAX_BATCH_RECORDS} records`] };
  const out: { records: Payload[]; refused: string[] } = { records: [], refused: [] };
  for (const record of m.records as unknown[]) {
    const checked = typeof record === 'object' && record !== null && !Array.isArray(record) ? checkRecord(board, record as Payload) : { refused: 'a record that is not a JSON object' };
    if ('refused' in checked) out.refused.push(checked.refused);
    else out.records.push(checked.payload);
  }
  return out;
}

/** Checks one record; the reason when it is refused. */
export function checkRecord(board: string, p: Payload): { payload: Payload } | { refused: string } {
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

/** The actions an event payload carries that can be stored: an id each, once, chained. */
export function eventActions(p: Payload): Payload[] {
  const seen = new Set<number>();
  const actions: Payload[] = [];
  for (const a of Array.isArray(p.actions) ? (p.actions as Payload[]) : []) {
    if (typeof a !== 'object' || a === null || !isId(a.id) || seen.has(a.id)) continue;
    if (!Number.isSafeInteger(a.after) || (a.after as number) < 0 || (a.after as number) >= a.id) continue;
    seen.add(a.id);
    actions.push(a);
  }
  return actions;
}

/** The columns an event payload is stored with besides its record. */
export function eventColumns(p: Payload) {
  return {
    receivedAt: timeOf(p.received_at)!,
    action: p.action as string,
    subsystem: p.subsystem as string,
    devpath: p.devpath as string,
    device: isText(p.device) ? p.device : null,
    devname: isText(p.devname) ? p.devname : null,
    devtype: isText(p.devtype) ? p.devtype : null,
  };
}

/** An event's record as stored: its actions are rows of their own (read back with it), not kept twice. */
export function storedRecord(p: Payload): Payload {
  const { actions: _actions, ...record } = p;
  return record;
}

const parsed = (value: unknown): Payload => (typeof value === 'string' ? (JSON.parse(value) as Payload) : (value as Payload));

/** A stored event and its stored actions back as the board's `history --json` record. */
export function toHistoryRecord(event: unknown, actions: readonly unknown[]): HistoryRecord {
  const { type: _type, board: _board, after: _after, ...record } = parsed(event);
  return {
    ...(record as unknown as HistoryRecord),
    actions: actions.map((a) => {
      const { type: _t, board: _b, event_id: _e, after: _a, ...action } = parsed(a);
      return action as unknown as ActionRecord;
    }),
  };
}

/** A GLOB as SQLite reads it (`*`, `?`, `[...]`, `[^...]`) as an anchored regular expression, for PostgreSQL's `~`. */
export function globToRegex(glob: string): string {
  let out = '^';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') out += '.*';
    else if (c === '?') out += '.';
    else if (c === '[') {
      // SQLite: `^` first negates; a `]` right after `[` or `[^` is a member. Members are
      // escaped (\\ stays special inside brackets in PostgreSQL's AREs).
      const negated = glob[i + 1] === '^';
      const from = negated ? i + 2 : i + 1;
      const end = glob.indexOf(']', from + 1);
      if (end < 0) {
        out += '\\[';
        continue;
      }
      out += `[${negated ? '^' : ''}${glob.slice(from, end).replace(/[\\\]\[^]/g, (c) => `\\${c}`)}]`;
      i = end;
    } else out += /[.+(){}|^$\\[\]]/.test(c) ? `\\${c}` : c;
  }
  return `${out}$`;
}

/** The rows one message's records make, per table, each id once (the lowest `after` kept). */
export interface BatchRows {
  events: Payload[];
  /** Results and the actions events carry, with their event_id. */
  actions: Payload[];
  incidents: Payload[];
}

export function batchRows(records: readonly Payload[]): BatchRows {
  const tables = { event: new Map<number, Payload>(), action: new Map<number, Payload>(), incident: new Map<number, Payload>() };
  const add = (table: Map<number, Payload>, p: Payload) => {
    const had = table.get(p.id as number);
    if (had === undefined) table.set(p.id as number, p);
    else if ((p.after as number) < (had.after as number)) table.set(p.id as number, { ...had, after: p.after });
  };
  for (const p of records) {
    add(tables[p.type as 'event' | 'action' | 'incident'], p);
    if (p.type === 'event') for (const a of eventActions(p)) add(tables.action, { ...a, event_id: p.id });
  }
  return { events: [...tables.event.values()], actions: [...tables.action.values()], incidents: [...tables.incident.values()] };
}

/**
 * Whether a record received again says what the stored one says. What may change between two
 * sendings is left out: `after` (sent again from another point), an event's actions (results
 * come later) and the form (an action inside its event or on its own).
 */
export function sameRecord(stream: Conflict['stream'], stored: Payload, received: Payload): boolean {
  const fields =
    stream === 'event' ? ['action', 'devpath', 'subsystem', 'received_at', 'seqnum'] : stream === 'action' ? ['kind', 'target', 'ok', 'finished_at'] : ['kind', 'at'];
  return fields.every((f) => JSON.stringify(stored[f]) === JSON.stringify(received[f]));
}

/** The conflicts among the rows of a message, given what the database held of their ids. */
export function conflictsOf(rows: BatchRows, held: { stream: Conflict['stream']; id: number; record: unknown }[]): Conflict[] {
  const byKey = new Map<string, Payload>();
  for (const [stream, list] of [['event', rows.events], ['action', rows.actions], ['incident', rows.incidents]] as const) {
    for (const p of list) byKey.set(`${stream} ${p.id as number}`, p);
  }
  const conflicts: Conflict[] = [];
  for (const h of held) {
    const received = byKey.get(`${h.stream} ${h.id}`);
    const stored = parsed(h.record);
    if (received !== undefined && !sameRecord(h.stream, stored, received)) conflicts.push({ stream: h.stream, id: h.id, stored, received });
  }
  return conflicts;
}
