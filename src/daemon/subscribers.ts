// Subscribers on the control socket: processed events as JSON lines, filtered by
// subsystem, action and tag. A subscriber may first replay the history from a cursor
// (a history id): rows up to the newest recorded id are read from the database, events
// processed meanwhile wait in its backlog, and then it goes live. Ids grow in the order
// events finish, so replay and live meet with no gap and no duplicate.
// A subscriber that does not read is dropped; it never stalls the daemon.
import type { Socket } from 'node:net';
import { fnmatchAny } from '../text/fnmatch.js';
import type { HistoryDb } from '../history/db.js';
import { iterateProcessed, type ProcessedRecord } from '../history/store.js';
import type { Logger } from '../log.js';

/** Bytes queued for one subscriber before it is dropped as too slow. */
export const MAX_SUBSCRIBER_BACKLOG_BYTES = 4 * 1024 * 1024;
/** Events held for a subscriber while its replay runs. */
const MAX_REPLAY_BACKLOG = 100_000;

export interface SubscriptionFilter {
  subsystems?: string[];
  actions?: string[];
  tags?: string[];
  /** Also results that come after their event (supervised jobs, units): `{"result": ..., "event_id": N}` lines. */
  results?: boolean;
}

/** A later result as subscribers receive it. */
export interface ResultRecord {
  event_id: number;
  devpath: string;
  subsystem: string;
  result: unknown;
}

interface Subscriber {
  socket: Socket;
  matches: (record: ProcessedRecord) => boolean;
  results: boolean;
  /** Lines of live events that arrived during replay; undefined once live. */
  backlog: string[] | undefined;
}

export function compileFilter(filter: SubscriptionFilter): (record: ProcessedRecord) => boolean {
  const subsystem = filter.subsystems?.length ? fnmatchAny(filter.subsystems) : undefined;
  const actions = filter.actions?.length ? new Set(filter.actions) : undefined;
  const tags = filter.tags?.length ? filter.tags : undefined;
  return (record) =>
    (!subsystem || subsystem(record.subsystem)) &&
    (!actions || actions.has(record.action)) &&
    (!tags || tags.some((tag) => record.tags.includes(tag)));
}

export class SubscriberHub {
  dropped = 0;
  #subscribers = new Set<Subscriber>();
  #log: Logger;

  constructor(log: Logger) {
    this.#log = log;
  }

  get size(): number {
    return this.#subscribers.size;
  }

  /**
   * Adds a subscriber. With `replay`, rows (afterId, upToId] are sent first; the caller
   * passes the newest recorded id, after committing, in the same turn of the event loop.
   */
  add(socket: Socket, filter: SubscriptionFilter, replay?: { db: HistoryDb; afterId: number; upToId: number }): void {
    const subscriber: Subscriber = { socket, matches: compileFilter(filter), results: filter.results === true, backlog: replay ? [] : undefined };
    this.#subscribers.add(subscriber);
    const remove = () => this.#subscribers.delete(subscriber);
    socket.once('close', remove);
    socket.once('error', remove);
    if (replay) void this.#replay(subscriber, replay.db, replay.afterId, replay.upToId);
  }

  /** Sends a processed event to every subscriber whose filter it passes. */
  publish(record: ProcessedRecord): void {
    let line: string | undefined;
    for (const subscriber of this.#subscribers) {
      if (!subscriber.matches(record)) continue;
      line ??= `${JSON.stringify(record)}\n`;
      this.#send(subscriber, line);
    }
  }

  /** Sends a later result to the subscribers that asked for results and whose filter its event passes. */
  publishResult(result: ResultRecord, event: ProcessedRecord): void {
    let line: string | undefined;
    for (const subscriber of this.#subscribers) {
      if (!subscriber.results || !subscriber.matches(event)) continue;
      line ??= `${JSON.stringify(result)}\n`;
      this.#send(subscriber, line);
    }
  }

  #send(subscriber: Subscriber, line: string): void {
    if (subscriber.backlog === undefined) this.#write(subscriber, line);
    else if (subscriber.backlog.length >= MAX_REPLAY_BACKLOG) this.#drop(subscriber, 'its replay fell too far behind');
    else subscriber.backlog.push(line);
  }

  closeAll(): void {
    for (const subscriber of this.#subscribers) subscriber.socket.end();
    this.#subscribers.clear();
  }

  #write(subscriber: Subscriber, line: string): void {
    if (subscriber.socket.writableLength > MAX_SUBSCRIBER_BACKLOG_BYTES) {
      this.#drop(subscriber, `it did not read (${subscriber.socket.writableLength} bytes waiting)`);
      return;
    }
    subscriber.socket.write(line);
  }

  #drop(subscriber: Subscriber, why: string): void {
    this.dropped++;
    this.#subscribers.delete(subscriber);
    this.#log.warn({ subscribers: this.#subscribers.size }, `Dropped a subscriber: ${why}`);
    subscriber.socket.destroy();
  }

  async #replay(subscriber: Subscriber, db: HistoryDb, afterId: number, upToId: number): Promise<void> {
    try {
      for (const record of iterateProcessed(db, afterId, upToId)) {
        if (!this.#subscribers.has(subscriber)) return;
        if (!subscriber.matches(record)) continue;
        // A replay may be long: wait for the reader instead of buffering it all.
        if (!subscriber.socket.write(`${JSON.stringify(record)}\n`)) await waitForDrain(subscriber.socket);
      }
    } catch (error) {
      this.#log.error({ err: error }, `Failed to replay the history to a subscriber: ${(error as Error).message}`);
      this.#drop(subscriber, 'its replay failed');
      return;
    }
    const backlog = subscriber.backlog ?? [];
    subscriber.backlog = undefined;
    for (const line of backlog) {
      if (this.#subscribers.has(subscriber)) this.#write(subscriber, line);
    }
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
