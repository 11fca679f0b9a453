// Recording events, actions and incidents in batches. A batch that cannot be committed
// (disk full, database locked) stays in memory and is retried with a growing delay, so
// events keep flowing and recording resumes when it can; only past `maxPending` rows are
// the oldest given up, and that loss is itself recorded once recording works again.
import type { Statement } from 'better-sqlite3';
import type { HistoryDb } from './db.js';
import type { Uevent } from '../uevent/event.js';
import type { ActionResult } from '../actions/results.js';
import type { Plan } from '../rules/plan.js';
import type { DeviceIdentity } from './devices.js';
import { eventResult, type Incident } from './records.js';
import { storedProperties } from './row-properties.js';
import { RuleSetIds } from './rule-sets.js';
import type { Rule } from '../rules/model.js';

export interface HistoryWriterOptions {
  /** Commit when this many rows are waiting. */
  batchSize?: number;
  /** Commit at the latest this long after the first waiting row. */
  flushDelayMs?: number;
  /** Rows kept in memory while commits fail; beyond this the oldest events are given up. */
  maxPending?: number;
  onError?(error: Error, rows: number): void;
  /** Recording works again after failures; `lost` rows were given up meanwhile. */
  onRecovered?(failedCommits: number, lost: number): void;
  /** SQLite says the file is corrupt: the owner should replace the database (see `reopen`). */
  onCorrupt?(error: Error): void;
  /** Rows were committed (readers of the database, such as the fleet forwarder, have news). */
  onCommitted?(): void;
  /** The writer recorded an incident of its own (rows given up while commits failed), now committed. */
  onOwnIncident?(incident: Incident): void;
}

// Many rows per statement: the per-statement cost is then paid once per 50 rows.
const ROWS_PER_INSERT = 50;
const EVENT_COLUMNS =
  'id, seqnum, action, devpath, subsystem, devtype, devname, driver, major, minor, source, received_at, properties, result, device_id, rule_set';
const MAX_CACHED_DEVICES = 10_000;
const MAX_RETRY_DELAY_MS = 30_000;

function insertEventsSql(rows: number): string {
  const row = `(${Array(16).fill('?').join(', ')})`;
  return `INSERT INTO events (${EVENT_COLUMNS}) VALUES ${Array(rows).fill(row).join(', ')}`;
}

const CORRUPT_CODES = new Set(['SQLITE_CORRUPT', 'SQLITE_NOTADB']);

export function isCorruptionError(error: unknown): boolean {
  return CORRUPT_CODES.has((error as { code?: string }).code ?? '');
}

interface PendingEvent {
  id: number;
  event: Uevent;
  result: string | null;
  rules: readonly Rule[];
  device: DeviceIdentity | undefined;
}

interface PendingAction {
  eventId: number;
  result: ActionResult;
  at: number;
}

interface Statements {
  insertEvent: Statement;
  insertEvents: Statement;
  insertIncident: Statement;
  insertAction: Statement;
  selectDevice: Statement;
  insertDevice: Statement;
  touchDevice: Statement;
  insertName: Statement;
}

function prepare(db: HistoryDb): Statements {
  return {
    insertEvent: db.prepare(insertEventsSql(1)),
    insertEvents: db.prepare(insertEventsSql(ROWS_PER_INSERT)),
    insertIncident: db.prepare('INSERT INTO incidents (kind, at, detail) VALUES (?, ?, ?)'),
    insertAction: db.prepare(
      `INSERT INTO actions (event_id, kind, target, rule, ok, error, exit_code, signal, timed_out, duration_ms, argv, stdout, stderr, finished_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    selectDevice: db.prepare('SELECT id FROM devices WHERE key = ?'),
    insertDevice: db.prepare(
      `INSERT INTO devices (key, subsystem, devpath, vendor_id, product_id, serial, vendor, model, first_seen, last_seen)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    touchDevice: db.prepare('UPDATE devices SET last_seen = max(last_seen, ?), devpath = ? WHERE id = ?'),
    insertName: db.prepare('INSERT OR IGNORE INTO device_names (name, device_id) VALUES (?, ?)'),
  };
}

interface CachedDevice {
  id: number;
  lastSeen: number;
  devpath: string;
}

/** Buffers rows and commits them in one transaction per batch, so a storm costs few fsyncs. */
export class HistoryWriter {
  #db: HistoryDb;
  #sql: Statements;
  #ruleSets: RuleSetIds;
  #events: PendingEvent[] = [];
  #actions: PendingAction[] = [];
  #incidents: Incident[] = [];
  // Ids are given here, not by SQLite, so actions can name their event before it is committed.
  #nextEventId: number;
  #devices = new Map<string, CachedDevice>();
  // "id name" pairs already in device_names.
  #names = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #retryDelayMs = 0;
  #lostSinceRecovery = { rows: 0, fromId: 0, toId: 0 };
  #options: Required<Pick<HistoryWriterOptions, 'batchSize' | 'flushDelayMs' | 'maxPending'>> & HistoryWriterOptions;
  /** Events committed (each with its actions). */
  eventsCommitted = 0;
  /** Rows of every kind committed: events, actions and incidents. */
  rowsCommitted = 0;
  /** Commits that failed (each is retried). */
  failedCommits = 0;
  /** Rows given up because commits kept failing and `maxPending` was reached. */
  lost = 0;

  constructor(db: HistoryDb, options: HistoryWriterOptions = {}) {
    this.#options = { batchSize: 2000, flushDelayMs: 5, maxPending: 100_000, ...options };
    this.#db = db;
    this.#sql = prepare(db);
    this.#ruleSets = new RuleSetIds(db);
    this.#nextEventId = (db.prepare('SELECT coalesce(max(id), 0) + 1 AS next FROM events').get() as { next: number }).next;
  }

  get pending(): number {
    return this.#events.length + this.#incidents.length + this.#actions.length;
  }

  /** True while commits fail and rows wait in memory for a retry. */
  get failing(): boolean {
    return this.#retryDelayMs > 0;
  }

  /** The id the last recorded event got (committed or not). */
  get lastEventId(): number {
    return this.#nextEventId - 1;
  }

  /**
   * Continue on another database (a new file after a corrupt one). Waiting rows are kept,
   * and ids go on from where they were, so subscribers' cursors stay valid.
   */
  reopen(db: HistoryDb): void {
    this.#db = db;
    this.#sql = prepare(db);
    this.#ruleSets = new RuleSetIds(db);
    this.#devices.clear();
    this.#names.clear();
    const next = (db.prepare('SELECT coalesce(max(id), 0) + 1 AS next FROM events').get() as { next: number }).next;
    this.#nextEventId = Math.max(this.#nextEventId, next);
  }

  /** Forget cached device ids (retention deleted device rows). */
  forgetDevices(): void {
    this.#devices.clear();
    this.#names.clear();
  }

  /** Queues the event (with what its rules did) and returns the id its row will have. */
  recordEvent(
    event: Uevent,
    processing: { plan?: Plan | undefined; rules?: readonly Rule[]; note?: string; device?: DeviceIdentity | undefined } = {},
  ): number {
    const id = this.#nextEventId++;
    const rules = processing.rules ?? [];
    const result = processing.note ? { properties: {}, symlinks: [], tags: [], note: processing.note } : eventResult(event, processing.plan, rules);
    this.#events.push({ id, event, result: result && JSON.stringify(result), rules, device: processing.device });
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

  /** Commits everything waiting now. Returns false when the commit failed (the rows still wait). */
  flush(): boolean {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const rows = this.pending;
    if (rows === 0) return true;
    const { rows: lostRows, fromId, toId } = this.#lostSinceRecovery;
    const lossIncident: Incident | undefined = lostRows > 0 ? { kind: 'history-lost', at: Date.now(), detail: { rows: lostRows, fromId, toId } } : undefined;
    if (lossIncident) this.#incidents.push(lossIncident);
    try {
      this.#db.transaction(() => this.#write())();
    } catch (error) {
      if (lossIncident) this.#incidents.pop();
      this.#failed(error as Error, rows);
      return false;
    }
    this.eventsCommitted += this.#events.length;
    this.rowsCommitted += rows;
    this.#events = [];
    this.#incidents = [];
    this.#actions = [];
    if (this.#retryDelayMs > 0) {
      this.#options.onRecovered?.(this.failedCommits, this.lost);
      this.#retryDelayMs = 0;
      this.#lostSinceRecovery = { rows: 0, fromId: 0, toId: 0 };
    }
    if (lossIncident) this.#options.onOwnIncident?.(lossIncident);
    this.#options.onCommitted?.();
    return true;
  }

  #write(): void {
    const sql = this.#sql;
    const events = this.#events;
    const touched = new Set<CachedDevice>();
    const deviceIds = events.map((e) => (e.device ? this.#deviceId(e.device, e.event.receivedAt, touched) : null));
    const ruleSets = events.map((e) => this.#ruleSets.idOf(e.rules));
    for (let j = 0; j < events.length; j++) if (deviceIds[j] !== null) this.#recordNames(events[j]!.event, deviceIds[j]!);
    let i = 0;
    for (; i + ROWS_PER_INSERT <= events.length; i += ROWS_PER_INSERT) {
      const values: unknown[] = [];
      for (let j = i; j < i + ROWS_PER_INSERT; j++) pushEventValues(values, events[j]!, deviceIds[j]!, ruleSets[j]!);
      sql.insertEvents.run(values);
    }
    for (; i < events.length; i++) sql.insertEvent.run(pushEventValues([], events[i]!, deviceIds[i]!, ruleSets[i]!));
    for (const device of touched) sql.touchDevice.run(device.lastSeen, device.devpath, device.id);
    for (const i of this.#incidents) sql.insertIncident.run(i.kind, i.at, JSON.stringify(i.detail));
    for (const { eventId, result: r, at } of this.#actions) {
      sql.insertAction.run(
        eventId, r.kind, r.target, r.rule, r.ok ? 1 : 0, r.error, r.exitCode ?? null, r.signal ?? null,
        r.timedOut === undefined ? null : r.timedOut ? 1 : 0, r.durationMs, r.argv ? JSON.stringify(r.argv) : null,
        r.stdout ?? null, r.stderr ?? null, at,
      );
    }
  }

  #deviceId(identity: DeviceIdentity, at: number, touched: Set<CachedDevice>): number {
    let device = this.#devices.get(identity.key);
    if (!device) {
      const row = this.#sql.selectDevice.get(identity.key) as { id: number } | undefined;
      const i = identity;
      const id = row?.id ?? Number(this.#sql.insertDevice.run(
        i.key, i.subsystem, i.devpath, i.vendorId ?? null, i.productId ?? null, i.serial ?? null, i.vendor ?? null, i.model ?? null, at, at,
      ).lastInsertRowid);
      if (this.#devices.size >= MAX_CACHED_DEVICES) this.#devices.clear();
      device = { id, lastSeen: at, devpath: identity.devpath };
      this.#devices.set(identity.key, device);
    }
    device.lastSeen = Math.max(device.lastSeen, at);
    device.devpath = identity.devpath;
    touched.add(device);
    return device.id;
  }

  // The kernel name (sdb, ttyUSB0, eth0) and the /dev node, so `--device sdb` finds the stick.
  #recordNames(event: Uevent, deviceId: number): void {
    const kernelName = event.devpath.slice(event.devpath.lastIndexOf('/') + 1);
    for (const name of event.devname === undefined ? [kernelName] : [kernelName, event.devname]) {
      const seen = `${deviceId} ${name}`;
      if (this.#names.has(seen)) continue;
      if (this.#names.size >= MAX_CACHED_DEVICES) this.#names.clear();
      this.#names.add(seen);
      this.#sql.insertName.run(name, deviceId);
    }
  }

  #failed(error: Error, rows: number): void {
    // Device and rule rows inserted in the rolled-back transaction are gone: look them up again.
    this.#devices.clear();
    this.#ruleSets.forget();
    this.#names.clear();
    this.failedCommits++;
    this.#giveUpBeyondLimit();
    this.#retryDelayMs = Math.min(MAX_RETRY_DELAY_MS, Math.max(250, this.#retryDelayMs * 2));
    this.#options.onError?.(error, rows);
    if (isCorruptionError(error)) this.#options.onCorrupt?.(error);
    this.#timer ??= setTimeout(() => this.flush(), this.#retryDelayMs);
  }

  #giveUpBeyondLimit(): void {
    // A tenth more than needed, so a long outage drops in chunks, not one row per event.
    const excess = this.pending - this.#options.maxPending;
    if (excess <= 0) return;
    const drop = excess + Math.floor(this.#options.maxPending / 10);
    const dropped = this.#events.splice(0, Math.min(drop, this.#events.length));
    if (dropped.length === 0) return;
    const gone = new Set(dropped.map((e) => e.id));
    const before = this.#actions.length;
    this.#actions = this.#actions.filter((a) => !gone.has(a.eventId));
    const lost = this.#lostSinceRecovery;
    if (lost.rows === 0) lost.fromId = dropped[0]!.id;
    lost.toId = dropped[dropped.length - 1]!.id;
    lost.rows += dropped.length + before - this.#actions.length;
    this.lost += dropped.length + before - this.#actions.length;
  }

  #schedule(): void {
    // While failing, only the retry timer commits: a full disk is not hammered per event.
    if (this.#retryDelayMs > 0) {
      if (this.pending > this.#options.maxPending) this.#giveUpBeyondLimit();
      return;
    }
    if (this.pending >= this.#options.batchSize) this.flush();
    else this.#timer ??= setTimeout(() => this.flush(), this.#options.flushDelayMs);
  }
}

function pushEventValues(values: unknown[], { id, event: e, result }: PendingEvent, deviceId: number | null, ruleSet: number | null): unknown[] {
  values.push(
    id, e.seqnum ?? null, e.action, e.devpath, e.subsystem, e.devtype ?? null, e.devname ?? null,
    e.driver ?? null, e.major ?? null, e.minor ?? null, e.source, e.receivedAt, storedProperties(e), result, deviceId, ruleSet,
  );
  return values;
}
