// Forwarding the history to a fleet over MQTT (mqtt.js): every recorded event, later result
// and incident, published at QoS 1 on PREFIX/<board>/events as JSON, with a retained
// PREFIX/<board>/status (online; offline as the will). The history is the outbox: the
// cursors of what the broker acknowledged are kept in the database, so after a reconnect or a
// restart everything after them is sent again, in order (at least once on the wire; the
// history ids make it exactly once at the collector). A backlog goes in batches with a turn
// of the event loop between them, so it never starves live events.
import { hostname } from 'node:os';
import type { HistoryDb } from '../history/db.js';
import { eventBacklog, forgetOtherTargets, readCursors, readOutbox, writeCursors, type Cursors, type OutboxItem } from '../history/outbox.js';
import type { Logger } from '../log.js';
import { BrokerProblems, brokerSecrets, type BrokerSecrets } from './broker.js';

const BATCH = 200;
// New rows are sent when the history says it committed them (nudge); this slower poll only
// retries after a send failed while the broker stayed connected.
const RETRY_POLL_MS = 5_000;

export interface ForwardOptions extends BrokerSecrets {
  url: string;
  prefix: string;
  board: string;
  version: string;
}

/** The board's default name: the hostname. */
export const defaultBoardName = (): string => hostname();

/** The payload of one outbox item: the record, its kind and the board. */
export function payloadOf(item: OutboxItem, board: string): string {
  return JSON.stringify({ type: item.stream, board, after: item.after, ...item.record });
}

type MqttClient = import('mqtt').MqttClient;

export class Forwarder {
  sent = 0;
  #options: ForwardOptions;
  #db: () => HistoryDb;
  #log: Logger;
  #target: string;
  #cursors: Cursors;
  #client: MqttClient | undefined;
  #pumping = false;
  /** A pump is scheduled for the next turn (nudges coalesce). */
  #nudged = false;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #problems: BrokerProblems;
  // Actions sent inside their event's record, not yet passed by the action cursor: not sent again.
  #sentInRecords = new Set<number>();
  // What the collector has for certain, as the broker keeps it (retained) when this board
  // (re)connects, or as the collector says it when it (re)connects itself (`fresh`): messages
  // a broker acknowledged but lost (it restarted without persistence) are sent again from
  // there. Marks in between trail what is in flight and are not taken.
  #awaitingMark = true;
  #rewind: Cursors | undefined;

  /** `db` gives the history database now (it is replaced if it was found corrupt). */
  constructor(options: ForwardOptions, db: () => HistoryDb, log: Logger) {
    this.#options = options;
    this.#db = db;
    this.#log = log.child({ forward: options.url });
    this.#target = Forwarder.target(options);
    this.#problems = new BrokerProblems(this.#log, 'Forwarding');
    this.#cursors = readCursors(db(), this.#target);
    forgetOtherTargets(db(), this.#target);
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
      backlog = eventBacklog(this.#db(), this.#cursors);
    } catch {
      // the database is closed (the daemon stopped) or being replaced
    }
    return {
      forwardConnected: this.connected,
      forwardCursor: this.#cursors.eventId,
      forwardBacklog: backlog,
      forwardSent: this.sent,
      forwardLastError: this.#problems.last,
    };
  }

  async start(): Promise<void> {
    const { connect } = await import('mqtt');
    const o = this.#options;
    const offline = JSON.stringify({ state: 'offline', board: o.board });
    this.#client = connect(o.url, {
      ...brokerSecrets(o),
      clientId: `hotplugd-${o.board}`,
      clean: true,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
      will: { topic: `${this.topic}/status`, payload: Buffer.from(offline), qos: 1, retain: true },
    });
    const client = this.#client;
    client.on('connect', () => {
      this.#problems.clear();
      this.#awaitingMark = true;
      client.subscribe(`${this.topic}/collected`, { qos: 1 });
      this.#log.info({ cursor: this.#cursors.eventId }, 'Forwarding: connected to the broker');
      client.publish(`${this.topic}/status`, JSON.stringify({ state: 'online', board: o.board, version: o.version, at: new Date().toISOString() }), { qos: 1, retain: true });
      this.#pump();
    });
    client.on('message', (_topic, message, packet) => this.#mark(message, packet.retain));
    client.on('error', (error) => this.#problems.report(error));
    // A broker that refuses a TLS client without a certificate just closes the connection.
    client.on('close', () => {
      if (!this.#closed && this.#problems.last === null) this.#problems.report(new Error('the broker closed the connection'));
    });
    this.#timer = setInterval(() => this.#pump(), RETRY_POLL_MS);
    this.#timer.unref();
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
        await client.publishAsync(`${this.topic}/status`, JSON.stringify({ state: 'offline', board: this.#options.board }), { qos: 1, retain: true });
      } catch {
        // the will says it anyway
      }
    }
    await client.endAsync(true).catch(() => undefined);
  }

  #mark(message: Buffer, retained: boolean): void {
    let mark: Partial<Record<'event_id' | 'action_id' | 'incident_id' | 'fresh', unknown>>;
    try {
      mark = JSON.parse(message.toString('utf8')) as typeof mark;
    } catch {
      return;
    }
    if (!(mark.fresh === true || (retained && this.#awaitingMark))) return;
    const id = (value: unknown, current: number) => (Number.isSafeInteger(value) && (value as number) >= 0 ? Math.min(value as number, current) : current);
    this.#awaitingMark = false;
    const c = this.#cursors;
    const rewind = { eventId: id(mark.event_id, c.eventId), actionId: id(mark.action_id, c.actionId), incidentId: id(mark.incident_id, c.incidentId) };
    if (rewind.eventId === c.eventId && rewind.actionId === c.actionId && rewind.incidentId === c.incidentId) return;
    this.#log.info({ from: c, to: rewind }, 'Forwarding: the collector has less than the broker acknowledged; sending again from what it has');
    this.#rewind = rewind;
    this.#pump();
  }

  #applyRewind(): void {
    const rewind = this.#rewind;
    if (rewind === undefined) return;
    this.#rewind = undefined;
    const c = this.#cursors;
    this.#cursors = { eventId: Math.min(c.eventId, rewind.eventId), actionId: Math.min(c.actionId, rewind.actionId), incidentId: Math.min(c.incidentId, rewind.incidentId) };
    this.#sentInRecords.clear();
  }

  async #pump(): Promise<void> {
    if (this.#pumping || this.#closed || !this.connected) return;
    this.#pumping = true;
    try {
      while (!this.#closed) {
        this.#applyRewind();
        const items = readOutbox(this.#db(), this.#cursors, BATCH);
        if (items.length === 0 || !this.connected || this.#closed) break;
        const client = this.#client as MqttClient;
        const toSend = items.filter((item) => item.stream !== 'action' || !this.#sentInRecords.has(item.id));
        await Promise.all(toSend.map((item) => client.publishAsync(`${this.topic}/events`, payloadOf(item, this.#options.board), { qos: 1 })));
        const next = { ...this.#cursors };
        for (const item of items) {
          if (item.stream === 'event') {
            next.eventId = Math.max(next.eventId, item.id);
            for (const action of item.record.actions) this.#sentInRecords.add(action.id);
          } else if (item.stream === 'action') {
            next.actionId = Math.max(next.actionId, item.id);
            this.#sentInRecords.delete(item.id);
          } else next.incidentId = Math.max(next.incidentId, item.id);
        }
        this.#cursors = next;
        this.#applyRewind();
        writeCursors(this.#db(), this.#target, this.#cursors);
        this.sent += toSend.length;
        await new Promise((resolve) => setImmediate(resolve));
      }
    } catch (error) {
      this.#problems.report(error);
    } finally {
      this.#pumping = false;
    }
  }
}
