// Subscribers on the control socket: processed events as JSON lines, filtered by
// subsystem, action and tag. A subscriber may first replay the history from a cursor
// (a history id): rows up to the newest recorded id are read from the database, events
// processed meanwhile wait in its backlog, and then it goes live. Ids grow in the order
// events finish, so replay and live meet with no gap and no duplicate.
// A subscriber that does not read is dropped; it never stalls the daemon. Lines go out
// through the fan-out (fanout.ts): serialised once, written once per loop turn.
import type { Socket } from 'node:net';
import { fnmatchAny } from '../text/fnmatch.js';
import type { HistoryDb } from '../history/db.js';
import { iterateProcessed, type IncidentLine, type ProcessedRecord, type ResultRecord } from '../history/records.js';
import type { Logger } from '../log.js';
import { HotplugError } from '../errors.js';
import { FanOut, type LineKeys, type Reader } from './fanout.js';

/** Bytes a subscriber may fall behind the newest line before it is dropped as too slow. */
export const MAX_SUBSCRIBER_BACKLOG_BYTES = 4 * 1024 * 1024;
export const DEFAULT_MAX_SUBSCRIBERS = 128;

export interface SubscriptionFilter {
  subsystems?: string[];
  actions?: string[];
  tags?: string[];
  /** Also results that come after their event (supervised jobs, units): `{"result": ..., "event_id": N}` lines. */
  results?: boolean;
  /** Also incidents as they are recorded (overflows, SEQNUM gaps, ...): `{"incident": {...}}` lines, whatever the filter. */
  incidents?: boolean;
}


export function compileFilter(filter: SubscriptionFilter): (keys: LineKeys) => boolean {
  const subsystem = filter.subsystems?.length ? fnmatchAny(filter.subsystems) : undefined;
  const actions = filter.actions?.length ? new Set(filter.actions) : undefined;
  const tags = filter.tags?.length ? filter.tags : undefined;
  return (keys) =>
    (!subsystem || subsystem(keys.subsystem)) &&
    (!actions || actions.has(keys.action)) &&
    (!tags || tags.some((tag) => keys.tags.includes(tag)));
}

function filterKey(filter: SubscriptionFilter): string {
  const sorted = (list: string[] | undefined) => (list?.length ? [...list].sort() : null);
  return JSON.stringify([sorted(filter.subsystems), sorted(filter.actions), sorted(filter.tags), filter.results === true, filter.incidents === true]);
}

export class SubscriberHub {
  dropped = 0;
  #fanOut: FanOut;
  #readers = new Set<Reader>();
  #log: Logger;
  #maxSubscribers: number;

  constructor(log: Logger, options: { maxSubscribers?: number | undefined; maxBacklogBytes?: number } = {}) {
    this.#log = log;
    this.#maxSubscribers = options.maxSubscribers ?? DEFAULT_MAX_SUBSCRIBERS;
    this.#fanOut = new FanOut(options.maxBacklogBytes ?? MAX_SUBSCRIBER_BACKLOG_BYTES, (reader, why) => this.#dropped(reader, why));
  }

  get size(): number {
    return this.#readers.size;
  }

  /** Bytes of lines held for subscribers that have not taken them yet (all of them together). */
  get heldBytes(): number {
    return this.#fanOut.heldBytes;
  }

  /**
   * Adds a subscriber: writes `greeting` (the answer line), then with `replay` the rows
   * (afterId, upToId], then live lines. The caller passes the newest recorded id, after
   * committing, in the same turn of the event loop. Throws when there are too many.
   */
  add(socket: Socket, filter: SubscriptionFilter, greeting: string, replay?: { db: HistoryDb; afterId: number; upToId: number }): void {
    if (this.#readers.size >= this.#maxSubscribers) {
      throw new HotplugError('ETOOMANY', `too many subscribers (${this.#readers.size}; the limit is ${this.#maxSubscribers}, see --max-subscribers)`);
    }
    const reader: Reader = {
      socket, filterKey: filterKey(filter), matches: compileFilter(filter), results: filter.results === true, incidents: filter.incidents === true,
      cursor: this.#fanOut.end, live: replay === undefined, blocked: false,
    };
    this.#readers.add(reader);
    this.#fanOut.add(reader);
    const remove = () => {
      this.#readers.delete(reader);
      this.#fanOut.remove(reader);
    };
    socket.once('close', remove);
    socket.once('error', remove);
    socket.write(greeting);
    if (replay) void this.#replay(reader, replay.db, replay.afterId, replay.upToId);
  }

  /** Sends a processed event to every subscriber whose filter it passes: serialised once. */
  publish(record: ProcessedRecord): void {
    this.#fanOut.append(Buffer.from(`${JSON.stringify(record)}\n`), record, false);
  }

  /** Sends a later result to the subscribers that asked for results and whose filter its event passes. */
  publishResult(result: ResultRecord, event: ProcessedRecord): void {
    this.#fanOut.append(Buffer.from(`${JSON.stringify(result)}\n`), event, true);
  }

  /** Sends an incident to the subscribers that asked for incidents. */
  publishIncident(line: IncidentLine): void {
    this.#fanOut.appendIncident(Buffer.from(`${JSON.stringify(line)}\n`));
  }

  closeAll(): void {
    for (const reader of this.#readers) reader.socket.end();
    this.#readers.clear();
  }

  #drop(reader: Reader, why: string): void {
    this.#fanOut.remove(reader);
    this.#dropped(reader, why);
  }

  #dropped(reader: Reader, why: string): void {
    this.dropped++;
    this.#readers.delete(reader);
    this.#log.warn({ subscribers: this.#readers.size }, `Dropped a subscriber: ${why}`);
    reader.socket.destroy();
  }

  async #replay(reader: Reader, db: HistoryDb, afterId: number, upToId: number): Promise<void> {
    try {
      for (const record of iterateProcessed(db, afterId, upToId)) {
        if (!this.#readers.has(reader)) return;
        if (!reader.matches(record)) continue;
        // A replay may be long: wait for the reader instead of buffering it all.
        if (!reader.socket.write(`${JSON.stringify(record)}\n`)) await waitForDrain(reader.socket);
      }
    } catch (error) {
      this.#log.error({ err: error }, `Failed to replay the history to a subscriber: ${(error as Error).message}`);
      this.#drop(reader, 'its replay failed');
      return;
    }
    // Live lines since it subscribed wait in the fan-out's log, from its cursor on.
    reader.live = true;
    this.#fanOut.schedule();
  }
}

function waitForDrain(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.once('drain', done);
    socket.once('close', done);
  });
}
