// Retention by age, row count and file size, enforced a little at a time: each step deletes
// at most one chunk of the oldest events (with their actions), so the daemon never pauses
// long and never deletes a whole table under load. The rules and lists of rules events name
// stay (a row per rule and per distinct list: few, and what a later event names again).
import type { Statement } from 'better-sqlite3';
import type { HistoryDb } from './db.js';
import { oldestUnforwarded } from './outbox.js';

export interface RetentionLimits {
  maxAgeMs?: number | undefined;
  maxRows?: number | undefined;
  maxBytes?: number | undefined;
}

const DAY_MS = 24 * 3600 * 1000;

/** Fits a small board: three months, or 200 MiB of database, whichever comes first. */
export const DEFAULT_RETENTION: RetentionLimits = { maxAgeMs: 90 * DAY_MS, maxBytes: 200 * 1024 * 1024 };

export const DEFAULT_RETENTION_CHUNK = 2000;

export type RetentionReason = 'age' | 'rows' | 'size';

export interface RetentionStep {
  /** Events deleted in this step. */
  deleted: number;
  /** Device rows deleted (unreferenced, older than the age limit). */
  devicesDeleted: number;
  reasons: RetentionReason[];
  /** Events deleted that a forwarding target had not had acknowledged (only the size limit does that). */
  unforwardedDeleted: number;
  /** False when another step has more to delete. */
  done: boolean;
}

export class Retention {
  readonly limits: RetentionLimits;
  #db: HistoryDb;
  #chunk: number;
  #sql: Record<'oldest' | 'bounds' | 'ageCutoff' | 'events' | 'actions' | 'incidents' | 'devices', Statement>;
  #incremental: boolean;

  constructor(db: HistoryDb, limits: RetentionLimits, chunk = DEFAULT_RETENTION_CHUNK) {
    this.#db = db;
    this.limits = limits;
    this.#chunk = chunk;
    this.#incremental = db.pragma('auto_vacuum', { simple: true }) === 2;
    this.#sql = {
      oldest: db.prepare('SELECT id, received_at FROM events ORDER BY id LIMIT 1'),
      // Two subqueries: SQLite answers min() and max() from the index ends only one at a time.
      bounds: db.prepare('SELECT (SELECT min(id) FROM events) AS first, (SELECT max(id) FROM events) AS last'),
      ageCutoff: db.prepare('SELECT max(id) AS id FROM (SELECT id, received_at FROM events ORDER BY id LIMIT ?) WHERE received_at < ?'),
      events: db.prepare('DELETE FROM events WHERE id <= ?'),
      actions: db.prepare('DELETE FROM actions WHERE event_id <= ?'),
      incidents: db.prepare('DELETE FROM incidents WHERE id IN (SELECT id FROM incidents WHERE at < ? ORDER BY at LIMIT ?)'),
      devices: db.prepare(
        `DELETE FROM devices WHERE id IN (SELECT id FROM devices WHERE last_seen < ?
           AND NOT EXISTS (SELECT 1 FROM events WHERE device_id = devices.id) LIMIT ?)`,
      ),
    };
  }

  /** The database's size without its free pages, in bytes. */
  usedBytes(): number {
    const pages = this.#db.pragma('page_count', { simple: true }) as number;
    const free = this.#db.pragma('freelist_count', { simple: true }) as number;
    return (pages - free) * (this.#db.pragma('page_size', { simple: true }) as number);
  }

  step(now = Date.now()): RetentionStep {
    const { maxAgeMs, maxRows, maxBytes } = this.limits;
    const oldest = this.#sql.oldest.get() as { id: number; received_at: number } | undefined;
    const reasons: RetentionReason[] = [];
    let upTo = 0;
    if (oldest) {
      const chunkEnd = oldest.id + this.#chunk - 1;
      if (maxAgeMs !== undefined && oldest.received_at < now - maxAgeMs) {
        const row = this.#sql.ageCutoff.get(this.#chunk, now - maxAgeMs) as { id: number | null };
        if (row.id !== null) {
          upTo = Math.max(upTo, row.id);
          reasons.push('age');
        }
      }
      if (maxRows !== undefined) {
        // Ids are consecutive (gaps only where rows were lost): max - min + 1 counts without a scan.
        const { first, last } = this.#sql.bounds.get() as { first: number; last: number };
        if (last - first + 1 > maxRows) {
          upTo = Math.max(upTo, Math.min(chunkEnd, last - maxRows));
          reasons.push('rows');
        }
      }
      if (maxBytes !== undefined && this.usedBytes() > maxBytes) {
        upTo = Math.max(upTo, chunkEnd);
        reasons.push('size');
      }
    }
    // Forwarding keeps what its broker has not acknowledged: age and row limits wait for
    // it; only the size limit (the disk) may take it, and says how much.
    const keepFrom = oldestUnforwarded(this.#db);
    let unforwardedDeleted = 0;
    if (keepFrom !== undefined && upTo >= keepFrom) {
      // Nothing older than what it needs is left: this step has nothing to do.
      if (!reasons.includes('size')) upTo = keepFrom - 1 >= (oldest?.id ?? 0) ? keepFrom - 1 : 0;
      else unforwardedDeleted = (this.#db.prepare('SELECT count(*) AS n FROM events WHERE id >= ? AND id <= ?').get(keepFrom, upTo) as { n: number }).n;
    }
    let deleted = 0;
    let devicesDeleted = 0;
    this.#db.transaction(() => {
      if (upTo > 0) {
        deleted = this.#sql.events.run(upTo).changes;
        this.#sql.actions.run(upTo);
      }
      const first = this.#sql.oldest.get() as { received_at: number } | undefined;
      const incidentCutoff = Math.min(first?.received_at ?? now, maxAgeMs === undefined ? now : now - maxAgeMs);
      // Incidents older than every event left explain nothing any more.
      if (upTo > 0 || maxAgeMs !== undefined) this.#sql.incidents.run(incidentCutoff, this.#chunk);
      if (maxAgeMs !== undefined) devicesDeleted = this.#sql.devices.run(now - maxAgeMs, this.#chunk).changes;
    })();
    // Give freed pages back to the file system, a bounded number per step.
    if (this.#incremental && deleted > 0) this.#db.pragma(`incremental_vacuum(${this.#chunk})`);
    return { deleted, devicesDeleted, reasons, unforwardedDeleted, done: upTo <= 0 };
  }
}
