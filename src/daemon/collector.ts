// The fleet's collector: subscribes to PREFIX/+/events (and +/status) on the broker and
// stores what boards forward, once per (board, id). A message is acknowledged to the broker
// only after its row is committed (mqtt.js customHandleAcks), with a persistent session,
// so a collector that stops or crashes loses nothing: the broker redelivers. Malformed or
// oversized payloads are dropped, counted and logged with their board and topic.
import { readFileSync } from 'node:fs';
import { describeError } from '../errors.js';
import { checkPayload, fleetWriter, type FleetDb } from '../history/fleet.js';
import type { Logger } from '../log.js';
import { boardNameProblem, DEFAULT_FORWARD_PREFIX } from './forwarder.js';

const COMMIT_EVERY_MS = 50;
const COMMIT_BATCH = 500;
const LOG_INTERVAL_MS = 10_000;

export interface CollectorOptions {
  url: string;
  prefix?: string | undefined;
  /** A shared subscription group: collectors of one group split the boards' messages. */
  share?: string | undefined;
  /** The collector's MQTT client id (its persistent session on the broker). */
  clientId: string;
  credentialsFile?: string | undefined;
  caFile?: string | undefined;
  certFile?: string | undefined;
  keyFile?: string | undefined;
}

interface Pending {
  board: string;
  payload: Record<string, unknown>;
  done: (code: number) => void;
}

export class Collector {
  stored = 0;
  duplicates = 0;
  refused = 0;
  #o: CollectorOptions;
  #db: FleetDb;
  #log: Logger;
  #writer: ReturnType<typeof fleetWriter>;
  #pending: Pending[] = [];
  #timer: NodeJS.Timeout | undefined;
  #client: import('mqtt').MqttClient | undefined;
  #lastRefusalLog = 0;
  #lastError: string | null = null;

  constructor(options: CollectorOptions, db: FleetDb, log: Logger) {
    this.#o = options;
    this.#db = db;
    this.#log = log;
    this.#writer = fleetWriter(db);
  }

  async start(): Promise<void> {
    const { connect } = await import('mqtt');
    const o = this.#o;
    const prefix = o.prefix ?? DEFAULT_FORWARD_PREFIX;
    const [username = '', password = ''] = o.credentialsFile ? readFileSync(o.credentialsFile, 'utf8').split('\n') : [];
    const client = connect(o.url, {
      ...(o.credentialsFile ? { username, password } : {}),
      ...(o.caFile ? { ca: readFileSync(o.caFile) } : {}),
      ...(o.certFile ? { cert: readFileSync(o.certFile) } : {}),
      ...(o.keyFile ? { key: readFileSync(o.keyFile) } : {}),
      clientId: o.clientId,
      clean: false,
      reconnectPeriod: 1000,
      // Acknowledge a message only once it is stored.
      customHandleAcks: (topic, message, _packet, done) => this.#receive(topic, message, done),
    });
    this.#client = client;
    const events = `${o.share ? `$share/${o.share}/` : ''}${prefix}/+/events`;
    const status = `${prefix}/+/status`;
    client.on('connect', (ack) => {
      this.#lastError = null;
      this.#log.info({ broker: o.url, events, sessionPresent: ack.sessionPresent }, 'Collecting');
      client.subscribe([events, status], { qos: 1 }, (error) => {
        if (error) this.#failed(error);
      });
    });
    client.on('error', (error) => this.#failed(error));
    this.#timer = setInterval(() => this.#commit(), COMMIT_EVERY_MS);
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#commit();
    await this.#client?.endAsync().catch(() => undefined);
  }

  #failed(error: unknown): void {
    const message = describeError(error);
    if (message !== this.#lastError) this.#log.warn({ err: error }, `Collector: ${message}; retrying`);
    this.#lastError = message;
  }

  #receive(topic: string, message: Buffer, done: (code: number) => void): void {
    const parts = topic.split('/');
    const board = parts.at(-2) ?? '';
    const kind = parts.at(-1);
    if (boardNameProblem(board) !== undefined) return this.#refuse(topic, board, 'the board name is not valid', done);
    if (kind === 'status') {
      try {
        const status = JSON.parse(message.toString('utf8')) as { state?: unknown; version?: unknown };
        if (typeof status.state === 'string') this.#writer.status(board, status.state.slice(0, 32), typeof status.version === 'string' ? status.version.slice(0, 64) : undefined, Date.now());
      } catch {
        // a status that is not JSON says nothing
      }
      done(0);
      return;
    }
    const checked = checkPayload(board, message);
    if ('refused' in checked) return this.#refuse(topic, board, checked.refused, done);
    this.#pending.push({ board, payload: checked.payload, done });
    if (this.#pending.length >= COMMIT_BATCH) this.#commit();
  }

  // Refused messages are acknowledged: redelivering them would refuse them again.
  #refuse(topic: string, board: string, why: string, done: (code: number) => void): void {
    this.refused++;
    const now = Date.now();
    if (now - this.#lastRefusalLog >= LOG_INTERVAL_MS) {
      this.#lastRefusalLog = now;
      this.#log.warn({ topic, board, refused: this.refused }, `Collector: dropped a message from ${JSON.stringify(board)}: ${why}`);
    }
    done(0);
  }

  #commit(): void {
    if (this.#pending.length === 0) return;
    const batch = this.#pending.splice(0);
    const now = Date.now();
    try {
      this.#db.transaction(() => {
        for (const { board, payload } of batch) {
          if (this.#writer.store(board, payload, now)) this.stored++;
          else this.duplicates++;
        }
      })();
    } catch (error) {
      // Not stored, not acknowledged: the broker sends them again after a reconnect.
      this.#log.error({ err: error, messages: batch.length }, `Collector: failed to store messages: ${describeError(error)}`);
      this.#client?.end(true, () => this.#client?.reconnect());
      return;
    }
    for (const { done } of batch) done(0);
  }
}
