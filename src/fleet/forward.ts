// Forwarding the history to a fleet over MQTT (mqtt.js): every recorded event, later result
// and incident, in batches at QoS 1 on PREFIX/<board>/events, with a retained
// PREFIX/<board>/status (online; offline as the will). The history is the outbox, and only
// the collector's word moves it on (see protocol.ts): a bounded window of records is in flight
// beyond what the collector confirmed; its acks move the cursors kept in the database; after a
// reconnect, a restart, a `resend` or a long silence, everything after them is sent again (the
// collector stores each record once). A backlog never starves live events: a turn of the event
// loop between messages, and never more in flight than the window.
import { hostname } from 'node:os';
import type { HistoryDb } from '../history/db.js';
import { eventBacklog, forgetOtherTargets, readCursors, readOutbox, writeCursors, type Cursors, type OutboxItem } from '../history/outbox.js';
import type { Logger } from '../log.js';
import { BrokerProblems, connectBroker, type BrokerSecrets } from './broker.js';
import { DEFAULT_WINDOW, parseCollectorWord, SendWindow, topicsOf, type WindowLimits } from './protocol.js';

// The window is looked at this often: a retry after a failed send, and the silence timeout.
const TICK_MS = 1_000;

export interface ForwardOptions extends BrokerSecrets {
  url: string;
  prefix: string;
  board: string;
  version: string;
  /** In flight beyond the collector's confirmed mark (default DEFAULT_WINDOW). */
  window?: WindowLimits | undefined;
}

/** The board's default name: the hostname. */
export const defaultBoardName = (): string => hostname();

/** One record of a batch: the outbox item, its kind and the board. */
export function recordOf(item: OutboxItem, board: string): Record<string, unknown> {
  return { type: item.stream, board, after: item.after, ...item.record };
}

type MqttClient = import('mqtt').MqttClient;

/** Where the forwarder reads what to send and keeps how far the collector has it. */
export interface ForwardOutbox {
  /** The cursors kept (what the collector confirmed). */
  cursors(): Cursors;
  keep(cursors: Cursors): void;
  /** Up to `limit` items after `cursors`, in the order to send. */
  read(cursors: Cursors, limit: number): OutboxItem[];
  /** Events after `cursors.eventId`. */
  backlog(cursors: Cursors): number;
}

/** The outbox of a board: its history (`db` gives the database now: it is replaced if it was found corrupt). */
export function historyOutbox(db: () => HistoryDb, target: string): ForwardOutbox {
  forgetOtherTargets(db(), target);
  return {
    cursors: () => readCursors(db(), target),
    keep: (cursors) => writeCursors(db(), target, cursors),
    read: (cursors, limit) => readOutbox(db(), cursors, limit),
    backlog: (cursors) => eventBacklog(db(), cursors),
  };
}

export class Forwarder {
  /** Records published (sent again after a restart of the window: counted again). */
  sent = 0;
  /** Times everything in flight was sent again (reconnect, silence, the collector asked). */
  resends = 0;
  #options: ForwardOptions;
  #outbox: ForwardOutbox;
  #log: Logger;
  #window: SendWindow;
  #client: MqttClient | undefined;
  #pumping = false;
  /** A pump is scheduled for the next turn (nudges coalesce). */
  #nudged = false;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #problems: BrokerProblems;
  // Actions sent inside their event's record, not yet passed by the action cursor: not sent again.
  #sentInRecords = new Set<number>();
  #topics: ReturnType<typeof topicsOf>;

  /** `outbox`: the board's history (historyOutbox), or for a load test any source of records. */
  constructor(options: ForwardOptions, outbox: ForwardOutbox, log: Logger) {
    this.#options = options;
    this.#outbox = outbox;
    this.#log = log.child({ forward: options.url });
    this.#topics = topicsOf(options.prefix, options.board);
    this.#problems = new BrokerProblems(this.#log, 'Forwarding');
    this.#window = new SendWindow(outbox.cursors(), options.window ?? DEFAULT_WINDOW, Date.now());
  }

  /** The key of a target's cursors: the broker, the topic prefix and the board. */
  static target(options: Pick<ForwardOptions, 'url' | 'prefix' | 'board'>): string {
    return `${options.url} ${options.prefix}/${options.board}`;
  }

  get connected(): boolean {
    return this.#client?.connected ?? false;
  }

  get topic(): string {
    return `${this.#options.prefix}/${this.#options.board}`;
  }

  stats() {
    let backlog: number | null = null;
    try {
      backlog = this.#outbox.backlog(this.#window.confirmed);
    } catch {
      // the database is closed (the daemon stopped) or being replaced
    }
    return {
      forwardConnected: this.connected,
      forwardCursor: this.#window.confirmed.eventId,
      forwardBacklog: backlog,
      forwardInFlight: this.#window.inFlightRecords,
      forwardSent: this.sent,
      forwardResends: this.resends,
      forwardLastError: this.#problems.last,
    };
  }

  async start(): Promise<void> {
    const o = this.#options;
    const offline = JSON.stringify({ state: 'offline', board: o.board });
    this.#client = await connectBroker(o.url, o, {
      clientId: `hotplugd-${o.board}`,
      clean: true,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
      will: { topic: this.#topics.status, payload: Buffer.from(offline), qos: 1, retain: true },
    });
    const client = this.#client;
    client.on('connect', () => {
      this.#problems.clear();
      // What was in flight may be gone with the connection: from the collector's mark again.
      this.#restart();
      client.subscribe([this.#topics.collected, this.#topics.ack], { qos: 1 });
      this.#log.info({ cursor: this.#window.confirmed.eventId }, 'Forwarding: connected to the broker');
      client.publish(this.#topics.status, JSON.stringify({ state: 'online', board: o.board, version: o.version, at: new Date().toISOString() }), { qos: 1, retain: true });
      void this.#pump();
    });
    client.on('message', (topic, message, packet) => this.#heard(topic, message, packet.retain));
    client.on('error', (error) => this.#problems.report(error));
    // A broker that refuses a TLS client without a certificate just closes the connection.
    client.on('close', () => {
      if (!this.#closed && this.#problems.last === null) this.#problems.report(new Error('the broker closed the connection'));
    });
    this.#timer = setInterval(() => this.#tick(), TICK_MS);
    this.#timer.unref();
  }

  /** Everything up to what the outbox holds now is confirmed by the collector (a load test waits for it). */
  get confirmed(): Cursors {
    return this.#window.confirmed;
  }

  /** Something new was recorded: send it soon. */
  nudge(): void {
    if (this.#pumping || this.#nudged) return;
    this.#nudged = true;
    setImmediate(() => {
      this.#nudged = false;
      void this.#pump();
    });
  }

  async stop(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    const client = this.#client;
    if (client === undefined) return;
    if (client.connected) {
      try {
        await client.publishAsync(this.#topics.status, JSON.stringify({ state: 'offline', board: this.#options.board }), { qos: 1, retain: true });
      } catch {
        // the will says it anyway
      }
    }
    await client.endAsync(true).catch(() => undefined);
  }

  #restart(): void {
    this.#window.restart(Date.now());
    this.#sentInRecords.clear();
  }

  #tick(): void {
    if (this.#window.timedOut(Date.now())) {
      this.resends++;
      this.#sentInRecords.clear();
      this.#log.info({ from: this.#window.confirmed }, 'Forwarding: no word from the collector; sending again from its last mark');
    }
    void this.#pump();
  }

  #heard(topic: string, message: Buffer, retained: boolean): void {
    const word = parseCollectorWord(message, topic === this.#topics.ack ? 'ack' : 'collected', retained);
    if (word === undefined) return;
    const before = this.#window.confirmed;
    const changed = this.#window.heard(word, Date.now());
    if (word.kind !== 'ack') {
      this.#sentInRecords.clear();
      this.resends++;
      const after = this.#window.confirmed;
      if (after.eventId < before.eventId || after.actionId < before.actionId || after.incidentId < before.incidentId) {
        this.#log.info({ from: before, to: after }, 'Forwarding: the collector has less than this board thought; sending again from what it has');
      }
    }
    if (changed) {
      try {
        this.#outbox.keep(this.#window.confirmed);
      } catch (error) {
        this.#problems.report(error);
      }
    }
    void this.#pump();
  }

  async #pump(): Promise<void> {
    if (this.#pumping || this.#closed || !this.connected) return;
    this.#pumping = true;
    try {
      for (let room = this.#window.room(); room !== undefined && !this.#closed && this.connected; room = this.#window.room()) {
        const from: Cursors = this.#window.sent;
        const items = this.#outbox.read(from, room.records);
        if (items.length === 0) break;
        const records: string[] = [];
        let bytes = 0;
        const upTo = { ...from };
        for (const item of items) {
          const skip = item.stream === 'action' && this.#sentInRecords.has(item.id);
          const json = skip ? '' : JSON.stringify(recordOf(item, this.#options.board));
          if (records.length > 0 && bytes + json.length > room.bytes) break;
          if (!skip) {
            records.push(json);
            bytes += json.length + 1;
          }
          if (item.stream === 'event') {
            upTo.eventId = item.id;
            for (const action of item.record.actions) this.#sentInRecords.add(action.id);
          } else if (item.stream === 'action') {
            upTo.actionId = item.id;
            this.#sentInRecords.delete(item.id);
          } else upTo.incidentId = item.id;
        }
        if (records.length === 0) {
          this.#window.skipped(upTo);
          continue;
        }
        const client = this.#client as MqttClient;
        const message = `{"type":"batch","board":${JSON.stringify(this.#options.board)},"records":[${records.join(',')}]}`;
        // Not awaited: the window, not the broker's PUBACK, says how much is in flight.
        client.publish(this.#topics.events, message, { qos: 1 }, (error) => {
          if (error) this.#problems.report(error);
        });
        this.#window.published(upTo, records.length, message.length, Date.now());
        this.sent += records.length;
        await new Promise((resolve) => setImmediate(resolve));
      }
    } catch (error) {
      this.#problems.report(error);
    } finally {
      this.#pumping = false;
    }
  }
}
