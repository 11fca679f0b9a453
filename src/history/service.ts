// The history as the daemon keeps it: the database file (replaced, loudly, when corrupt),
// the batched writer, device identities, and retention run a chunk at a time between events.
import { existsSync, renameSync, rmSync } from 'node:fs';
import { openHistoryDb, type HistoryDb } from './db.js';
import { DeviceIdentities } from './devices.js';
import { recordedIdentity, type Incident } from './records.js';
import { Retention, type RetentionLimits } from './retention.js';
import { HistoryWriter, isCorruptionError } from './writer.js';
import type { Logger } from '../log.js';
import type { Sysfs } from '../uevent/sysfs.js';

export interface HistoryServiceOptions {
  path: string;
  log: Logger;
  sysfs: Sysfs;
  retention: RetentionLimits;
  /** How often retention looks for work (default 60 s). */
  retentionIntervalMs?: number;
}

const DEFAULT_RETENTION_INTERVAL_MS = 60_000;
// The daemon must not sit in SQLite's busy handler while events wait: a lock held by
// someone else fails the commit fast, and the writer retries later.
const DAEMON_BUSY_TIMEOUT_MS = 100;

function isCorrupt(error: unknown): boolean {
  return isCorruptionError(error) || isCorruptionError((error as { cause?: unknown }).cause);
}

export class HistoryService {
  readonly writer: HistoryWriter;
  readonly identities: DeviceIdentities;
  /** Times a corrupt database file was moved aside and a new one started. */
  replaced = 0;
  retentionDeleted = 0;
  retentionFailures = 0;
  #db: HistoryDb;
  #retention: Retention;
  #options: HistoryServiceOptions;
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #closed = false;
  /** Where this service's incidents go: straight to the writer until the pipeline takes them. */
  #report: (incident: Incident) => void = (incident) => this.writer.recordIncident(incident);
  #committed = new Set<() => void>();
  /** Where incidents the writer recorded itself are told (they are in the history already). */
  #publish: (incident: Incident) => void = () => undefined;

  constructor(options: HistoryServiceOptions) {
    this.#options = options;
    let movedTo: string | undefined;
    let db: HistoryDb;
    try {
      db = this.#open();
    } catch (error) {
      if (!isCorrupt(error)) throw error;
      movedTo = this.#moveAside(error as Error);
      db = this.#open();
    }
    this.#db = db;
    this.#retention = new Retention(db, options.retention);
    this.writer = new HistoryWriter(db, {
      onError: (error, rows) =>
        options.log.error({ err: error, rows, code: (error as { code?: string }).code }, `Failed to record ${rows} history rows (kept, retrying): ${error.message}`),
      onRecovered: (failedCommits, lost) => options.log.warn({ failedCommits, lost }, 'Recording history works again'),
      onCorrupt: (error) => this.#replaceCorrupt(error),
      onOwnIncident: (incident) => this.#publish(incident),
      onCommitted: () => {
        for (const listener of this.#committed) listener();
      },
    });
    if (movedTo !== undefined) this.#recordReplacement(movedTo, 'at start');
    this.identities = new DeviceIdentities(
      (devpath, name) => options.sysfs.attribute(devpath, name),
      (devpath) => recordedIdentity(this.#db, devpath),
    );
  }

  /** Hands this service's incidents (retention, a replaced file) to `report`, which records and publishes them. */
  reportIncidentsTo(report: (incident: Incident) => void, publish: (incident: Incident) => void): void {
    this.#report = report;
    this.#publish = publish;
  }

  /** Calls `listener` after each commit. */
  afterCommit(listener: () => void): void {
    this.#committed.add(listener);
  }

  get db(): HistoryDb {
    return this.#db;
  }

  /** Runs retention now and then every interval; each step is one chunk, between events. */
  startRetention(): void {
    const interval = this.#options.retentionIntervalMs ?? DEFAULT_RETENTION_INTERVAL_MS;
    this.#timer = setInterval(() => this.runRetention(), interval);
    this.#timer.unref();
    setImmediate(() => this.runRetention());
  }

  /** Deletes what the limits allow, one chunk per turn of the event loop. */
  runRetention(): void {
    if (this.#running || this.#closed) return;
    this.#running = true;
    const step = () => {
      if (this.#closed) return void (this.#running = false);
      try {
        const result = this.#retention.step();
        this.retentionDeleted += result.deleted;
        if (result.unforwardedDeleted > 0) {
          this.#report({ kind: 'forward-dropped', at: Date.now(), detail: { events: result.unforwardedDeleted } });
          this.#options.log.warn({ events: result.unforwardedDeleted }, 'History size limit reached: events not yet forwarded were deleted');
        }
        if (result.devicesDeleted > 0) this.writer.forgetDevices();
        if (!result.done) return void setImmediate(step);
      } catch (error) {
        this.retentionFailures++;
        this.#options.log.warn({ err: error }, `History retention failed (tried again later): ${(error as Error).message}`);
      }
      this.#running = false;
    };
    step();
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    if (!this.writer.flush()) {
      this.#options.log.error({ rows: this.writer.pending }, `${this.writer.pending} history rows could not be recorded before exit`);
    }
    this.#db.close();
  }

  #open(): HistoryDb {
    const db = openHistoryDb(this.#options.path);
    db.pragma(`busy_timeout = ${DAEMON_BUSY_TIMEOUT_MS}`);
    return db;
  }

  #moveAside(error: Error): string {
    const path = this.#options.path;
    const movedTo = `${path}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    renameSync(path, movedTo);
    if (existsSync(`${path}-wal`)) renameSync(`${path}-wal`, `${movedTo}-wal`);
    rmSync(`${path}-shm`, { force: true });
    this.replaced++;
    this.#options.log.error(
      { err: error, movedTo },
      `The history database ${path} is corrupt (${error.message}): moved to ${movedTo}; recording continues in a new file`,
    );
    return movedTo;
  }

  #replaceCorrupt(error: Error): void {
    if (this.#closed) return;
    try {
      this.#db.close();
    } catch {
      // Closing a corrupt file may fail too; it is moved aside either way.
    }
    try {
      const movedTo = this.#moveAside(error);
      this.#db = this.#open();
      this.#retention = new Retention(this.#db, this.#options.retention);
      this.writer.reopen(this.#db);
      this.#recordReplacement(movedTo, 'while running');
    } catch (reopenError) {
      this.#options.log.error({ err: reopenError }, `Failed to start a new history database: ${(reopenError as Error).message}`);
    }
  }

  #recordReplacement(movedTo: string, when: string): void {
    this.#report({ kind: 'database-replaced', at: Date.now(), detail: { path: this.#options.path, movedTo, when } });
  }
}
