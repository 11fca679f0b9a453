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

/** A collected fleet database: one interface over SQLite and PostgreSQL. */
export interface FleetStore {
  /** Where it is, for messages: a path, or postgres://host/db without the password. */
  readonly location: string;
  /** Stores a checked payload and commits it; false when that (board, id) was stored already. */
  store(board: string, payload: Payload, now: number): Promise<boolean>;
  status(board: string, state: string, version: string | undefined, now: number): Promise<void>;
  /** Moves a board's marks along the chains of rows it has (each row names the one before it). */
  advanceMarks(board: string): Promise<Marks>;
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
