// The fleet's collector: subscribes to PREFIX/+/events (and +/status) on the broker and
// stores what boards forward, once per (board, id). A message is acknowledged to the broker
// only after its row is committed (MQTT 5, mqtt.js customHandleAcks; mqtt.js reads the next
// message only after that, so each is committed on its own), with a persistent session, so a
// collector that stops or crashes loses nothing: the broker redelivers. What it has is
// published back to each board (PREFIX/<board>/collected, retained), so boards send again
// what a broker acknowledged and then lost. Collectors of one shared subscription write one
// database (PostgreSQL, or one SQLite file on one host), so each can say what it holds. Malformed
// or oversized payloads are dropped, counted and logged with their board and topic.
import { describeError } from '../errors.js';
import { checkPayload, type FleetStore } from './records.js';
import { LogThrottle, type Logger } from '../log.js';
import { boardNameProblem, BrokerProblems, brokerSecrets, DEFAULT_FORWARD_PREFIX, type BrokerSecrets } from './broker.js';

const MARKS_EVERY_MS = 200;
const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 30_000;

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
  #store: FleetStore;
  #log: Logger;
  #storeProblem: string | undefined;
  #touched = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #client: import('mqtt').MqttClient | undefined;
  #refusalLogs = new LogThrottle();
  #problems: BrokerProblems;
  /** While the database cannot store: the broker is left, and joined again after this delay. */
  #retryDelayMs = RETRY_FIRST_MS;
  #holding = false;
  #retryTimer: NodeJS.Timeout | undefined;
  /** The marks last published per board, and whether a round of publishing is under way. */
  #marks = new Map<string, string>();
  #publishing = false;

  constructor(options: CollectorOptions, store: FleetStore, log: Logger) {
    this.#o = options;
    this.#store = store;
    this.#log = log;
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
        else void this.#publishAllMarks();
      });
    });
    client.on('error', (error) => this.#problems.report(error));
    this.#timer = setInterval(() => void this.#publishTouched(), MARKS_EVERY_MS);
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    clearTimeout(this.#retryTimer);
    await this.#publishTouched();
    await this.#client?.endAsync().catch(() => undefined);
  }

  async #receive(topic: string, message: Buffer, done: (code: number) => void): Promise<void> {
    const parts = topic.split('/');
    const board = parts.at(-2) ?? '';
    const kind = parts.at(-1);
    if (boardNameProblem(board) !== undefined) return this.#refuse(topic, board, 'the board name is not valid', done);
    if (kind === 'status') {
      let status: { state?: unknown; version?: unknown } = {};
      try {
        status = JSON.parse(message.toString('utf8')) as typeof status;
      } catch {
        // a status that is not JSON says nothing
      }
      if (typeof status?.state === 'string') {
        const state = status.state.slice(0, 32);
        const version = typeof status.version === 'string' ? status.version.slice(0, 64) : undefined;
        if ((await this.#stored(board, () => this.#store.status(board, state, version, Date.now()).then(() => true))) === undefined) return;
      }
      done(0);
      return;
    }
    const checked = checkPayload(board, message);
    if ('refused' in checked) return this.#refuse(topic, board, checked.refused, done);
    const isNew = await this.#stored(board, () => this.#store.store(board, checked.payload, Date.now()));
    if (isNew === undefined) return;
    if (isNew) this.stored++;
    else this.duplicates++;
    this.#touched.add(board);
    done(0);
  }

  /** Runs a write; on failure, undefined, logged once per problem, and the message is left unacknowledged. */
  async #stored<T>(board: string, write: () => Promise<T>): Promise<T | undefined> {
    try {
      const result = await write();
      this.#retryDelayMs = RETRY_FIRST_MS;
      if (this.#storeProblem !== undefined) this.#log.info({ database: this.#store.location }, 'Collector: storing again');
      this.#storeProblem = undefined;
      return result;
    } catch (error) {
      // Not stored, not acknowledged: the broker keeps it and sends it again after the reconnect.
      this.#storeFailed(error, board, 'store a message');
      this.#holdOff();
      return undefined;
    }
  }

  // The database cannot store: leave the broker for a while (doubling up to a limit), so
  // that its session keeps what boards send until the database is back.
  #holdOff(): void {
    if (this.#holding) return;
    this.#holding = true;
    const delay = this.#retryDelayMs;
    this.#retryDelayMs = Math.min(delay * 2, RETRY_MAX_MS);
    const client = this.#client;
    client?.end(true, () => {
      this.#retryTimer = setTimeout(() => {
        this.#holding = false;
        client.reconnect();
      }, delay);
    });
  }

  // A database that is down is one line per problem, not one per message.
  #storeFailed(error: unknown, board: string, what: string): void {
    const problem = describeError(error);
    if (problem !== this.#storeProblem) this.#log.error({ err: error, board, database: this.#store.location }, `Collector: failed to ${what}: ${problem}`);
    this.#storeProblem = problem;
  }

  async #publishTouched(): Promise<void> {
    if (this.#publishing) return;
    this.#publishing = true;
    const boards = [...this.#touched];
    this.#touched.clear();
    for (const board of boards) await this.#publishMarks(board, false);
    this.#publishing = false;
  }

  async #publishAllMarks(): Promise<void> {
    for (const board of await this.#store.boards().catch(() => [])) await this.#publishMarks(board.name, true);
  }

  // Refused messages are acknowledged: redelivering them would refuse them again.
  #refuse(topic: string, board: string, why: string, done: (code: number) => void): void {
    this.refused++;
    this.#refusalLogs.run('refused', () => this.#log.warn({ topic, board, refused: this.refused }, `Collector: dropped a message from ${JSON.stringify(board)}: ${why}`));
    done(0);
  }

  /** Publishes (retained) what the collector has of a board, when it changed or when asked. */
  async #publishMarks(board: string, always: boolean): Promise<void> {
    let marks;
    try {
      marks = await this.#store.advanceMarks(board);
    } catch (error) {
      this.#touched.add(board); // said at the next turn
      this.#storeFailed(error, board, 'read what it holds of the board');
      return;
    }
    const text = JSON.stringify(marks);
    if (!always && this.#marks.get(board) === text) return;
    this.#marks.set(board, text);
    // `fresh`: said on the collector's (re)connect, when boards should take it as it is.
    const payload = always ? `${text.slice(0, -1)},"fresh":true}` : text;
    this.#client?.publish(`${this.#o.prefix ?? DEFAULT_FORWARD_PREFIX}/${board}/collected`, payload, { qos: 1, retain: true });
  }
}
