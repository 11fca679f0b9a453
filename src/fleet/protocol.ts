// What a board and a collector say to each other over MQTT, and the board's send window.
// Pure: no I/O.
//   PREFIX/<board>/events     board → collector: batches of history records (QoS 1)
//   PREFIX/<board>/status     board → everyone: online/offline (retained; the will)
//   PREFIX/<board>/ack        collector → board: how far it has every record, as it stores (not retained)
//   PREFIX/<board>/collected  collector → board: the same, retained for a board that (re)connects;
//                             `fresh` when the collector (re)connects, `resend` when a hole stays open
// The board advances its cursors only on the collector's word, never on the broker's PUBACK: a
// broker may drop what it acknowledged (a restart without persistence, a full queue).
import type { Cursors } from '../history/outbox.js';
import type { Marks } from './records.js';

export const topicsOf = (prefix: string, board: string) => ({
  events: `${prefix}/${board}/events`,
  status: `${prefix}/${board}/status`,
  ack: `${prefix}/${board}/ack`,
  collected: `${prefix}/${board}/collected`,
});

/** How much a board keeps in flight beyond what the collector confirmed, and how it cuts batches. */
export interface WindowLimits {
  /** Records in flight. */
  records: number;
  /** Bytes in flight (the batches' JSON). */
  bytes: number;
  /** Records in one message. */
  batchRecords: number;
  /** Bytes of one message (a single larger record still goes alone). */
  batchBytes: number;
}

// Four messages of up to 250 records in flight per board: far below a stock Mosquitto's queue
// of 1,000 messages per client (max_queued_messages), and a round trip per 1,000 records.
export const DEFAULT_WINDOW: WindowLimits = { records: 1000, bytes: 512 * 1024, batchRecords: 250, batchBytes: 128 * 1024 };

/** What a collector says to a board. */
export interface CollectorWord {
  marks: Marks;
  /** ack: progress while connected; mark: the retained word a (re)connecting board reads; fresh/resend: send again from the marks. */
  kind: 'ack' | 'mark' | 'fresh' | 'resend';
}

const isMark = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;

/** A collector's message on `ack` or `collected` (`retained`: delivered as the retained message at subscription). */
export function parseCollectorWord(message: Buffer, topicKind: 'ack' | 'collected', retained: boolean): CollectorWord | undefined {
  let word: Partial<Record<'event_id' | 'action_id' | 'incident_id' | 'fresh' | 'resend', unknown>>;
  try {
    word = JSON.parse(message.toString('utf8')) as typeof word;
  } catch {
    return undefined;
  }
  if (typeof word !== 'object' || word === null || !isMark(word.event_id) || !isMark(word.action_id) || !isMark(word.incident_id)) return undefined;
  const marks = { event_id: word.event_id, action_id: word.action_id, incident_id: word.incident_id };
  if (word.resend === true) return { marks, kind: 'resend' };
  if (word.fresh === true) return { marks, kind: 'fresh' };
  return { marks, kind: topicKind === 'collected' && retained ? 'mark' : 'ack' };
}

const cursorsOf = (m: Marks): Cursors => ({ eventId: m.event_id, actionId: m.action_id, incidentId: m.incident_id });
const each = (a: Cursors, b: Cursors, f: (x: number, y: number) => number): Cursors => ({ eventId: f(a.eventId, b.eventId), actionId: f(a.actionId, b.actionId), incidentId: f(a.incidentId, b.incidentId) });
const covers = (a: Cursors, b: Cursors) => a.eventId >= b.eventId && a.actionId >= b.actionId && a.incidentId >= b.incidentId;
const sameCursors = (a: Cursors, b: Cursors) => covers(a, b) && covers(b, a);

interface InFlight {
  upTo: Cursors;
  records: number;
  bytes: number;
  sentAt: number;
}

/**
 * A board's send window: `confirmed` is what the collector said it has (kept in the history),
 * `sent` how far the board has read and published. At most `limits.records` records and
 * `limits.bytes` bytes are in flight between them, and at most `messages` messages: one to
 * start with and after every loss, one more per message confirmed (as TCP's congestion window:
 * a thousand boards sending again at once must not overflow the collector's queue on the broker,
 * where each message beyond it is dropped and costs another resend). Without progress for a
 * while, everything in flight is sent again (the collector stores each record once).
 */
export class SendWindow {
  confirmed: Cursors;
  sent: Cursors;
  #limits: WindowLimits;
  #inFlight: InFlight[] = [];
  /** Messages allowed in flight now (1 up to the limits' worth). */
  messages = 1;
  #lastProgressAt: number;
  #timeoutMs: number;
  #baseTimeoutMs: number;
  #maxTimeoutMs: number;
  #maxMessages: number;

  constructor(confirmed: Cursors, limits: WindowLimits, now: number, timeoutMs = 5_000, maxTimeoutMs = 60_000) {
    this.confirmed = { ...confirmed };
    this.sent = { ...confirmed };
    this.#limits = limits;
    this.#lastProgressAt = now;
    this.#timeoutMs = this.#baseTimeoutMs = timeoutMs;
    this.#maxTimeoutMs = maxTimeoutMs;
    this.#maxMessages = Math.max(1, Math.ceil(limits.records / limits.batchRecords));
  }

  get inFlightRecords(): number {
    return this.#inFlight.reduce((n, f) => n + f.records, 0);
  }

  get inFlightBytes(): number {
    return this.#inFlight.reduce((n, f) => n + f.bytes, 0);
  }

  /** How many records and bytes the next message may hold; undefined when the window is full. */
  room(): { records: number; bytes: number } | undefined {
    const records = Math.min(this.#limits.batchRecords, this.#limits.records - this.inFlightRecords);
    const bytes = Math.min(this.#limits.batchBytes, this.#limits.bytes - this.inFlightBytes);
    // An empty window always takes one message, however large its one record.
    if (this.#inFlight.length === 0) return { records: Math.max(records, 1), bytes: Math.max(bytes, 1) };
    return records > 0 && bytes > 0 && this.#inFlight.length < this.messages ? { records, bytes } : undefined;
  }

  /** A message was published holding records up to `upTo`. */
  published(upTo: Cursors, records: number, bytes: number, now: number): void {
    if (this.#inFlight.length === 0) this.#lastProgressAt = now;
    this.#inFlight.push({ upTo: { ...upTo }, records, bytes, sentAt: now });
    this.sent = each(this.sent, upTo, Math.max);
  }

  /** Records read and left out (actions already sent inside their events' records): nothing in flight. */
  skipped(upTo: Cursors): void {
    this.sent = each(this.sent, upTo, Math.max);
  }

  /** The collector's word; true when `confirmed` changed (to be kept). */
  heard(word: CollectorWord, now: number): boolean {
    // Never beyond what was sent: a mark from an earlier life of this history, or a forged one,
    // must not make the board skip records it never sent.
    const said = each(cursorsOf(word.marks), this.sent, Math.min);
    const before = this.confirmed;
    if (word.kind === 'ack') {
      this.confirmed = each(this.confirmed, said, Math.max);
      const confirmed = this.#inFlight.filter((f) => covers(this.confirmed, f.upTo));
      this.#inFlight = this.#inFlight.filter((f) => !covers(this.confirmed, f.upTo));
      this.messages = Math.min(this.messages + confirmed.length, this.#maxMessages);
      for (const f of confirmed) this.#roundTrip(now - f.sentAt);
      if (!sameCursors(before, this.confirmed)) this.#progress(now);
    } else {
      // The collector's own account: what it has, lower than thought if it lost something;
      // everything after it is sent again.
      // (`resend` is asked while connected: it never takes back what the collector confirmed.)
      this.confirmed = word.kind === 'resend' ? each(this.confirmed, said, Math.max) : said;
      if (word.kind === 'resend') this.messages = 1; // something was lost on the way
      this.restart(now);
    }
    return !sameCursors(before, this.confirmed);
  }

  /** Everything after `confirmed` is to be sent again (a reconnect, a timeout, the collector asked). */
  restart(now: number): void {
    this.sent = { ...this.confirmed };
    this.#inFlight = [];
    this.#lastProgressAt = now;
  }

  /** True (and the window restarted, with a longer timeout next) when nothing in flight was confirmed for the timeout. */
  timedOut(now: number): boolean {
    if (this.#inFlight.length === 0 || now - this.#lastProgressAt < this.#timeoutMs) return false;
    this.#timeoutMs = Math.min(this.#timeoutMs * 2, this.#maxTimeoutMs);
    this.messages = 1;
    this.restart(now);
    return true;
  }

  #progress(now: number): void {
    this.#lastProgressAt = now;
    this.#timeoutMs = this.#baseTimeout();
  }

  // Round trips as TCP measures them (RFC 6298): the timeout is the smoothed time plus four
  // times its variation, never below the base: a collector with a long queue (a thousand
  // boards sending at once) is waited for, not flooded with copies.
  #srtt: number | undefined;
  #rttvar = 0;

  #roundTrip(ms: number): void {
    if (this.#srtt === undefined) {
      this.#srtt = ms;
      this.#rttvar = ms / 2;
    } else {
      this.#rttvar = 0.75 * this.#rttvar + 0.25 * Math.abs(this.#srtt - ms);
      this.#srtt = 0.875 * this.#srtt + 0.125 * ms;
    }
  }

  #baseTimeout(): number {
    return Math.min(Math.max(this.#baseTimeoutMs, (this.#srtt ?? 0) + 4 * this.#rttvar), this.#maxTimeoutMs);
  }
}

/** The (id, after) links of one message's records, per stream (an event's actions included). */
export function linksOf(records: readonly Record<string, unknown>[]): PendingLinks {
  const links: Record<keyof Marks, [number, number][]> = { event_id: [], action_id: [], incident_id: [] };
  const add = (key: keyof Marks, r: Record<string, unknown>) => {
    if (Number.isSafeInteger(r.id) && Number.isSafeInteger(r.after)) links[key].push([r.id as number, r.after as number]);
  };
  for (const r of records) {
    if (r.type === 'event') {
      add('event_id', r);
      for (const a of Array.isArray(r.actions) ? (r.actions as Record<string, unknown>[]) : []) if (typeof a === 'object' && a !== null) add('action_id', a);
    } else add(r.type === 'action' ? 'action_id' : 'incident_id', r);
  }
  return links;
}

/**
 * Where a chain reaches from `mark` over these links (each record names the one before it):
 * from each id to the lowest id that names it, so a stray record with a far higher id never
 * carries a mark past the records a board really sent next. The collector's memory and the
 * database's walk (queries.ts chainEnd) both go this way.
 */
export function chainFrom(mark: number, links: Iterable<[id: number, after: number]>): number {
  const next = new Map<number, number>();
  for (const [id, after] of links) if (id > after && (next.get(after) ?? Infinity) > id) next.set(after, id);
  let current = mark;
  for (let id = next.get(current); id !== undefined && id > current; id = next.get(current)) current = id;
  return current;
}

/** Links beyond the marks, kept until the records before them come (bounded). */
export type PendingLinks = Record<keyof Marks, [id: number, after: number][]>;

export const MAX_PENDING_LINKS = 20_000;

/**
 * Marks moved along the links of records just stored (and of records stored earlier that were
 * waiting beyond a hole: `pending`), as the database's chain would move them (from each id to
 * the lowest id that names it), without asking the database. `pending` comes back with the
 * links still beyond the marks; `complete` is false when there are any (a hole, or rows stored
 * by another collector). Past MAX_PENDING_LINKS they are dropped (`overflowed`): then only the
 * database can say how far the chain goes.
 */
export function advanceInMemory(marks: Marks, links: PendingLinks, pending?: PendingLinks): { marks: Marks; complete: boolean; pending: PendingLinks; overflowed: boolean } {
  const out = { ...marks };
  const left: PendingLinks = { event_id: [], action_id: [], incident_id: [] };
  for (const key of ['event_id', 'action_id', 'incident_id'] as const) {
    const all = pending ? [...pending[key], ...links[key]] : links[key];
    out[key] = chainFrom(out[key], all);
    left[key] = all.filter(([id]) => id > out[key]);
  }
  const waiting = left.event_id.length + left.action_id.length + left.incident_id.length;
  const overflowed = waiting > MAX_PENDING_LINKS;
  return { marks: out, complete: waiting === 0, pending: overflowed ? { event_id: [], action_id: [], incident_id: [] } : left, overflowed };
}
