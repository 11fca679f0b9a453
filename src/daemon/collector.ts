// The fleet's collector: subscribes to PREFIX/+/events (and +/status) on the broker and
// stores what boards forward, once per (board, id). A message is acknowledged to the broker
// only after its row is committed (MQTT 5, mqtt.js customHandleAcks; mqtt.js reads the next
// message only after that, so each is committed on its own), with a persistent session, so a
// collector that stops or crashes loses nothing: the broker redelivers. What it has is
// published back to each board (PREFIX/<board>/collected, retained), so boards send again
// what a broker acknowledged and then lost. Malformed or
// oversized payloads are dropped, counted and logged with their board and topic.
import { describeError } from '../errors.js';
import { advanceMarks, checkPayload, fleetWriter, listBoards, type FleetDb } from '../history/fleet.js';
import type { Logger } from '../log.js';
import { boardNameProblem, BrokerProblems, brokerSecrets, DEFAULT_FORWARD_PREFIX, type BrokerSecrets } from './broker.js';

const MARKS_EVERY_MS = 200;
const LOG_INTERVAL_MS = 10_000;

export interface CollectorOptions extends BrokerSecrets {
  url: string;
  prefix?: string | undefined;
  /** A shared subscription group: collectors of one group split the boards' messages. */
  share?: string | undefined;
  /** The collector's MQTT client id (its persistent session on the broker). */
  clientId: string;
}

export class Collector {
  stored = 0;
  duplicates = 0;
  refused = 0;
  #o: CollectorOptions;
  #db: FleetDb;
  #log: Logger;
  #writer: ReturnType<typeof fleetWriter>;
  #touched = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #client: import('mqtt').MqttClient | undefined;
  #lastRefusalLog = 0;
  #problems: BrokerProblems;

  constructor(options: CollectorOptions, db: FleetDb, log: Logger) {
    this.#o = options;
    this.#db = db;
    this.#log = log;
    this.#writer = fleetWriter(db);
    this.#problems = new BrokerProblems(log, 'Collector');
  }

  async start(): Promise<void> {
    const { connect } = await import('mqtt');
    const o = this.#o;
    const prefix = o.prefix ?? DEFAULT_FORWARD_PREFIX;
    const client = connect(o.url, {
      ...brokerSecrets(o),
      clientId: o.clientId,
      // MQTT 5: acknowledgements the collector sends itself (customHandleAcks), and a
      // session that outlives a disconnect by a week (the broker keeps what comes meanwhile).
      protocolVersion: 5,
      clean: false,
      properties: { sessionExpiryInterval: 7 * 24 * 3600 },
      reconnectPeriod: 1000,
      // Acknowledge a message only once it is stored.
      customHandleAcks: (topic, message, _packet, done) => this.#receive(topic, message, done),
    });
    this.#client = client;
    const events = `${o.share ? `$share/${o.share}/` : ''}${prefix}/+/events`;
    const status = `${prefix}/+/status`;
    client.on('connect', (ack) => {
      this.#problems.clear();
      this.#log.info({ broker: o.url, events, sessionPresent: ack.sessionPresent }, 'Collecting');
      client.subscribe([events, status], { qos: 1 }, (error) => {
        if (error) this.#problems.report(error);
        // What it has, for every board it knows: after a broker restart without persistence,
        // boards send again what the broker acknowledged but never delivered.
        else for (const board of listBoards(this.#db)) this.#publishMarks(board.name, true);
      });
    });
    client.on('error', (error) => this.#problems.report(error));
    this.#timer = setInterval(() => this.#publishTouched(), MARKS_EVERY_MS);
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#publishTouched();
    await this.#client?.endAsync().catch(() => undefined);
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
    try {
      if (this.#writer.store(board, checked.payload, Date.now())) this.stored++;
      else this.duplicates++;
    } catch (error) {
      // Not stored, not acknowledged: the broker sends it again after a reconnect.
      this.#log.error({ err: error, board }, `Collector: failed to store a message: ${describeError(error)}`);
      this.#client?.end(true, () => this.#client?.reconnect());
      return;
    }
    this.#touched.add(board);
    done(0);
  }

  #publishTouched(): void {
    for (const board of this.#touched) this.#publishMarks(board, false);
    this.#touched.clear();
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

  #marks = new Map<string, string>();

  /** Publishes (retained) what the collector has of a board, when it changed or when asked. */
  #publishMarks(board: string, always: boolean): void {
    // Collectors sharing a subscription each hold part of a board's rows (each its own
    // database): none can say how far the whole fleet database goes.
    if (this.#o.share !== undefined) return;
    const text = JSON.stringify(advanceMarks(this.#db, board));
    if (!always && this.#marks.get(board) === text) return;
    this.#marks.set(board, text);
    // `fresh`: said on the collector's (re)connect, when boards should take it as it is.
    const payload = always ? `${text.slice(0, -1)},"fresh":true}` : text;
    this.#client?.publish(`${this.#o.prefix ?? DEFAULT_FORWARD_PREFIX}/${board}/collected`, payload, { qos: 1, retain: true });
  }
}
