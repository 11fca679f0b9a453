// A typed Node client of a running hotplugd: its control socket (status, settle, waitFor and
// a subscription to processed events that resumes from its cursor across daemon restarts)
// and its history database (read-only queries, as `hotplugd history` makes them).
import { setTimeout as sleep } from 'node:timers/promises';
import { defaultControlPath, defaultDbPath } from '../defaults.js';
import { sendControlRequest, streamControlRequest } from '../control/protocol.js';
import { HotplugError } from '../errors.js';
import { openHistoryDb } from '../history/db.js';
import { queryEvents, resolveDevice, type HistoryFilter, type HistoryRecord } from '../history/query.js';
import type { IncidentLine, ProcessedRecord } from '../history/records.js';

export type { HistoryRecord, IncidentLine, ProcessedRecord };

export interface ClientOptions {
  /** The daemon's control socket (default: hotplugd's). */
  controlPath?: string;
  /** The history database, for `history()` (default: hotplugd's). */
  dbPath?: string;
}

export interface SubscribeOptions {
  /** Subsystem globs (any may match). */
  subsystems?: string[];
  actions?: string[];
  /** Only events the rules tagged so (any may match). */
  tags?: string[];
  /**
   * Replay from the history first: a history id (the events after it), an ISO 8601 time,
   * `today`, `yesterday`, or a duration ago (`10m`, `2d`). Without it: new events only.
   */
  cursor?: number | string;
  /** Ends the iteration. */
  signal?: AbortSignal;
  /** How long to wait between tries while the daemon is away (default 500 ms). */
  retryMs?: number;
  /**
   * Called with each incident as the daemon records it (lost kernel events and the resync
   * after them, SEQNUM gaps, a replaced database), in order with the events. Incidents are
   * not replayed from the cursor: `hotplugd history --incidents` lists the recorded ones.
   */
  onIncident?: (incident: IncidentLine['incident']) => void;
}

export interface HistoryQuery {
  /** A device as `hotplugd history --device` reads it: vendor:product[:serial], a serial, a devpath, /dev/NODE, a kernel name. */
  device?: string;
  subsystems?: string[];
  actions?: string[];
  /** Epoch ms or a Date, inclusive. */
  since?: number | Date;
  /** Epoch ms or a Date, exclusive. */
  until?: number | Date;
  /** KEY=GLOB on the properties after the rules. */
  properties?: Record<string, string>;
  /** Only the newest N. */
  limit?: number;
}

export interface DaemonStatus {
  ok: true;
  pid: number;
  uptimeMs: number;
  logLevel: string;
  counters: Record<string, number>;
  rules: { version: number; count: number; files: number; failedReloads: number; loadErrors: number; loadWarnings: number };
  [more: string]: unknown;
}

// A reader slower than the daemon holds at most this many records here; past it, the socket
// is not read, the daemon drops the subscription, and the client comes back from its cursor.
const MAX_QUEUED = 1000;
const RESUME_BELOW = 100;

const epoch = (t: number | Date | undefined) => (t instanceof Date ? t.getTime() : t);

export class HotplugClient {
  readonly controlPath: string;
  readonly dbPath: string;

  constructor(options: ClientOptions = {}) {
    this.controlPath = options.controlPath ?? defaultControlPath();
    this.dbPath = options.dbPath ?? defaultDbPath();
  }

  async #request(request: Record<string, unknown>, timeoutMs?: number): Promise<Record<string, unknown>> {
    const reply = await sendControlRequest(this.controlPath, request, timeoutMs);
    if (!reply.ok) throw new HotplugError('EDAEMON', `hotplugd: ${String(reply.error)}`);
    return reply;
  }

  /** The daemon's status: counters, rules, jobs; with `rules`, per-rule metrics (`ruleMetrics`). */
  async status(options: { rules?: boolean } = {}): Promise<DaemonStatus> {
    return (await this.#request({ command: 'status', rules: options.rules === true })) as DaemonStatus;
  }

  /** Resolves once every event the kernel has sent so far is processed and recorded; rejects at the timeout. */
  async settle(options: { timeoutMs?: number } = {}): Promise<{ processed: number }> {
    const timeoutMs = options.timeoutMs ?? 120_000;
    return (await this.#request({ command: 'settle', timeoutMs }, timeoutMs + 5000)) as { processed: number };
  }

  /** Resolves once `path` (/dev/..., /sys/... or a devpath) exists and is processed (or, with `removed`, is gone). */
  async waitFor(path: string, options: { removed?: boolean; timeoutMs?: number } = {}): Promise<void> {
    const timeoutMs = options.timeoutMs ?? 120_000;
    await this.#request({ command: 'wait', path, removed: options.removed === true, timeoutMs }, timeoutMs + 5000);
  }

  /**
   * Processed events as the daemon records them, each once, in order. When the daemon goes
   * away (a restart), it connects again and goes on after the last event it gave: nothing
   * is missed and nothing given twice. Ends when `signal` aborts or the loop breaks.
   */
  async *subscribe(options: SubscribeOptions = {}): AsyncGenerator<ProcessedRecord> {
    let cursor = options.cursor;
    let lastId = 0;
    while (!options.signal?.aborted) {
      const queue: (ProcessedRecord | IncidentLine)[] = [];
      let wake: (() => void) | undefined;
      let refused: string | undefined;
      let greeted = false;
      const stream = streamControlRequest(
        this.controlPath,
        { command: 'subscribe', subsystems: options.subsystems, actions: options.actions, tags: options.tags, cursor, ...(options.onIncident ? { incidents: true } : {}) },
        (line) => {
          const message = JSON.parse(line) as Record<string, unknown>;
          if (!greeted) {
            greeted = true;
            if (!message.ok) refused = String(message.error);
            // Without a cursor, the first connection starts from now: later ones from there.
            else if (cursor === undefined) cursor = Number(message.cursor);
          } else if (queue.push(message as unknown as ProcessedRecord | IncidentLine) >= MAX_QUEUED) stream.pause();
          wake?.();
        },
      );
      let ended = false;
      const onAbort = () => stream.close();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      const done = stream.done.catch(() => undefined).then(() => {
        ended = true;
        wake?.();
      });
      try {
        for (;;) {
          while (queue.length > 0) {
            const record = queue.shift()!;
            if (queue.length === RESUME_BELOW) stream.resume();
            if ('incident' in record) {
              options.onIncident?.(record.incident);
              continue;
            }
            if (record.id <= lastId) continue; // replayed and live both: once
            lastId = record.id;
            cursor = record.id;
            yield record;
          }
          if (refused !== undefined) throw new HotplugError('EDAEMON', `hotplugd refused the subscription: ${refused}`);
          if (ended) break;
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
        }
      } finally {
        options.signal?.removeEventListener('abort', onAbort);
        stream.close();
        await done;
      }
      if (options.signal?.aborted) return;
      // The daemon went away (or is not there yet): try again from where this left off.
      await sleep(options.retryMs ?? 500, undefined, { signal: options.signal }).catch(() => undefined);
    }
  }

  /** Recorded events with their rules and actions, oldest first (the newest `limit` when given). */
  *history(query: HistoryQuery = {}): Generator<HistoryRecord> {
    const db = openHistoryDb(this.dbPath, { readonly: true });
    try {
      const filter: HistoryFilter = {
        subsystems: query.subsystems,
        actions: query.actions,
        since: epoch(query.since),
        until: epoch(query.until),
        properties: query.properties && Object.entries(query.properties).map(([key, glob]) => ({ key, glob })),
      };
      if (query.device !== undefined) {
        const devices = resolveDevice(db, query.device);
        if (devices.length === 0) return;
        filter.deviceIds = devices.map((d) => d.id);
      }
      yield* queryEvents(db, filter, { limit: query.limit });
    } finally {
      db.close();
    }
  }
}
