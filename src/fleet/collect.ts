// The fleet's collector: subscribes to PREFIX/+/events (and +/status) on the broker and
// stores what boards forward, once per (board, id), one message (a batch of records) per
// transaction. A message is acknowledged to the broker only after it is committed (MQTT 5,
// mqtt.js customHandleAcks), with a persistent session, so a collector that stops or crashes
// loses nothing the broker kept. Boards move on only on the collector's word (protocol.ts): an
// ack on PREFIX/<board>/ack after each stored message, the retained mark on
// PREFIX/<board>/collected for boards that (re)connect (`fresh` when the collector
// (re)connects), and `resend` when a board's chain keeps a hole (a broker dropped a message).
// Collectors of one shared subscription write one database (PostgreSQL, or one SQLite file on
// one host), so each can say what it holds. Malformed or oversized payloads are dropped,
// counted and logged with their board and topic; a second, different record for a (board, id)
// is kept as a conflict.
import { describeError } from '../errors.js';
import { checkMessage, type FleetStore, type Marks, type StoreOutcome } from './records.js';
import { LogThrottle, type Logger } from '../log.js';
import { boardNameProblem, BrokerProblems, connectBroker, DEFAULT_FORWARD_PREFIX, type BrokerSecrets } from './broker.js';
import { topicsOf } from './protocol.js';
import { beyond, BoardChains } from './board-chains.js';

// Acks go out this often (for the boards whose messages were stored since); retained marks
// less often. A hole in a board's chain that stays this long is asked to be sent again.
const ACKS_EVERY_MS = 50;
const MARKS_EVERY_MS = 1_000;
const HOLE_MS = 1_500;
const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 30_000;
const STOP_WAIT_MS = 3_000;

export interface CollectorOptions extends BrokerSecrets {
  url: string;
  prefix?: string | undefined;
  /** A shared subscription group: collectors of one group split the boards' messages. */
  share?: string | undefined;
  /** The collector's MQTT client id (its persistent session on the broker). */
  clientId: string;
  /**
   * Connections to the broker that each take messages (default 1): the broker hands a client
   * one message at a time, and the next only once the last is stored; with several, several
   * are stored at once (a database server works on them in parallel). More than one subscribes
   * as the shared group `--share` (or the client id), connection i as CLIENTID-i.
   */
  connections?: number | undefined;
}

export class Collector {
  /** Records stored, records held already, records refused, conflicts kept, resends asked. */
  stored = 0;
  duplicates = 0;
  refused = 0;
  conflicts = 0;
  resendsAsked = 0;
  #o: CollectorOptions;
  #prefix: string;
  #store: FleetStore;
  #log: Logger;
  #storeProblem: string | undefined;
  #boards = new BoardChains();
  #timers: NodeJS.Timeout[] = [];
  /** The first publishes acks and marks and hears statuses; all take messages. */
  #clients: import('mqtt').MqttClient[] = [];
  #refusalLogs = new LogThrottle();
  #conflictLogs = new LogThrottle();
  #problems: BrokerProblems;
  /** While the database cannot store: the broker is left, and joined again after this delay. */
  #retryDelayMs = RETRY_FIRST_MS;
  #holding = false;
  #retryTimer: NodeJS.Timeout | undefined;
  #acking = false;
  #marking = false;

  constructor(options: CollectorOptions, store: FleetStore, log: Logger) {
    this.#o = options;
    this.#prefix = options.prefix ?? DEFAULT_FORWARD_PREFIX;
    this.#store = store;
    this.#log = log;
    this.#problems = new BrokerProblems(log, 'Collector');
  }

  async start(): Promise<void> {
    const o = this.#o;
    const count = Math.max(1, o.connections ?? 1);
    const group = o.share ?? (count > 1 ? o.clientId : undefined);
    const plain = `${this.#prefix}/+/events`;
    const events = group === undefined ? plain : `$share/${group}/${plain}`;
    const status = `${this.#prefix}/+/status`;
    for (let i = 0; i < count; i++) {
      const client = await connectBroker(o.url, o, {
        clientId: i === 0 ? o.clientId : `${o.clientId}-${i}`,
        // MQTT 5: acknowledgements the collector sends itself (customHandleAcks), and a
        // session that outlives a disconnect by a week (the broker keeps what comes meanwhile).
        protocolVersion: 5,
        clean: false,
        properties: { sessionExpiryInterval: 7 * 24 * 3600 },
        reconnectPeriod: 1000,
        // Acknowledge a message only once it is stored.
        customHandleAcks: (topic, message, _packet, done) => this.#receive(topic, message, done),
      });
      this.#clients.push(client);
      client.on('connect', (ack) => {
        this.#problems.clear();
        if (i > 0) {
          client.subscribe(events, { qos: 1 }, (error) => error && this.#problems.report(error));
          return;
        }
        this.#log.info({ broker: o.url, events, connections: count, sessionPresent: ack.sessionPresent }, 'Collecting');
        // A session kept from a collector that subscribed otherwise would get every message twice.
        if (group !== undefined) client.unsubscribe(plain);
        client.subscribe([events, status], { qos: 1 }, (error) => {
          if (error) this.#problems.report(error);
          // What it has, for every board it knows: boards send again what a broker lost
          // meanwhile (a restart without persistence, a full queue).
          else void this.#publishAllMarks();
        });
      });
      client.on('error', (error) => this.#problems.report(error));
    }
    this.#timers.push(setInterval(() => void this.#ack(), ACKS_EVERY_MS), setInterval(() => void this.#publishMarks(), MARKS_EVERY_MS));
  }

  async stop(): Promise<void> {
    for (const timer of this.#timers) clearInterval(timer);
    clearTimeout(this.#retryTimer);
    await this.#ack();
    await this.#publishMarks();
    // What was published goes out first; but mqtt.js waits for that forever when the broker is
    // gone (it stops reconnecting on end): then the connections are closed as they are.
    const [main] = this.#clients;
    for (const until = Date.now() + STOP_WAIT_MS; main?.connected && Object.keys(main.outgoing).length > 0 && Date.now() < until; ) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await Promise.all(this.#clients.map((c) => c.endAsync(true).catch(() => undefined)));
  }

  async #receive(topic: string, message: Buffer, done: (code: number) => void): Promise<void> {
    const parts = topic.split('/');
    const board = parts.at(-2) ?? '';
    const kind = parts.at(-1);
    if (boardNameProblem(board) !== undefined) return this.#refuse(topic, board, ['the board name is not valid'], done);
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
    const checked = checkMessage(board, message);
    if (checked.records.length > 0) {
      const outcome = await this.#stored(board, () => this.#store.storeBatch(board, checked.records, Date.now()));
      if (outcome === undefined) return;
      this.#counted(board, outcome);
      this.#boards.stored(board, checked.records);
    }
    if (checked.refused.length > 0) return this.#refuse(topic, board, checked.refused, done);
    done(0);
  }

  #counted(board: string, outcome: StoreOutcome): void {
    this.stored += outcome.stored;
    this.duplicates += outcome.duplicates;
    this.conflicts += outcome.conflicts.length;
    for (const c of outcome.conflicts) {
      this.#conflictLogs.run('conflict', () =>
        this.#log.warn({ board, stream: c.stream, id: c.id, stored: c.stored, received: c.received, conflicts: this.conflicts }, `Collector: ${JSON.stringify(board)} sent a different ${c.stream} ${c.id} than the one held; both kept (fleet_conflicts)`),
      );
    }
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
    const clients = this.#clients;
    void Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined))).then(() => {
      this.#retryTimer = setTimeout(() => {
        this.#holding = false;
        for (const c of clients) c.reconnect();
      }, delay);
    });
  }

  // A database that is down is one line per problem, not one per message.
  #storeFailed(error: unknown, board: string, what: string): void {
    const problem = describeError(error);
    if (problem !== this.#storeProblem) this.#log.error({ err: error, board, database: this.#store.location }, `Collector: failed to ${what}: ${problem}`);
    this.#storeProblem = problem;
  }

  /** The marks of a board read now from the database; undefined when it cannot be read (said at the next turn). */
  async #marksOf(board: string): Promise<Marks | undefined> {
    try {
      const marks = await this.#store.advanceMarks(board);
      this.#boards.read(board, marks);
      return marks;
    } catch (error) {
      this.#boards.get(board).stored = true;
      this.#storeFailed(error, board, 'read what it holds of the board');
      return undefined;
    }
  }

  #publish(board: string, kind: 'ack' | 'collected', word: Marks & { fresh?: true; resend?: true }): void {
    const client = this.#clients[0];
    if (client?.connected !== true) return;
    const topics = topicsOf(this.#prefix, board);
    client.publish(kind === 'ack' ? topics.ack : topics.collected, JSON.stringify(word), { qos: 1, retain: kind === 'collected' });
  }

  // Each board whose records were stored since the last round is told how far its chain goes; a
  // board whose chain keeps a hole (this collector stored records beyond the marks) is asked
  // to send again from the marks.
  async #ack(): Promise<void> {
    if (this.#acking) return;
    this.#acking = true;
    try {
      const now = Date.now();
      for (const [board, state] of this.#boards.entries()) {
        if (!state.stored && state.holeSince === undefined) continue;
        const wasStored = state.stored;
        state.stored = false;
        // The marks moved in memory as messages were stored; the database walks the chain when
        // they are unknown, or a hole stays open (rows another collector stored may fill it).
        const holeOpen = state.holeSince !== undefined && now - state.holeSince >= HOLE_MS;
        let marks = state.needsDb || holeOpen ? undefined : state.marks;
        if (marks === undefined) {
          marks = await this.#marksOf(board);
          if (marks === undefined) continue;
        }
        if (wasStored) this.#publish(board, 'ack', marks);
        if (!beyond(state.highest, marks)) {
          state.holeSince = undefined;
          continue;
        }
        state.holeSince ??= now;
        if (now - state.holeSince >= HOLE_MS && now - (state.askedAt ?? 0) >= HOLE_MS) {
          state.askedAt = now;
          this.resendsAsked++;
          this.#log.info({ board, marks, highest: state.highest }, 'Collector: a hole in the board\'s records; asking it to send again from its marks');
          this.#publish(board, 'ack', { ...marks, resend: true });
        }
      }
    } finally {
      this.#acking = false;
    }
  }

  /** Publishes (retained) the marks of boards whose marks changed. */
  async #publishMarks(): Promise<void> {
    if (this.#marking) return;
    this.#marking = true;
    try {
      for (const [board, state] of this.#boards.entries()) {
        if (state.marks === undefined) continue;
        const text = JSON.stringify(state.marks);
        if (text === state.published) continue;
        state.published = text;
        this.#publish(board, 'collected', state.marks);
        // Kept, so that the next walk of the chain in the database starts from here.
        if (text !== state.kept) {
          try {
            await this.#store.keepMarks(board, state.marks);
            state.kept = text;
          } catch (error) {
            this.#storeFailed(error, board, 'keep what it holds of the board');
          }
        }
      }
    } finally {
      this.#marking = false;
    }
  }

  // `fresh`: said on the collector's (re)connect, when boards should take it as it is.
  async #publishAllMarks(): Promise<void> {
    for (const board of await this.#store.boards().catch(() => [])) {
      const marks = await this.#marksOf(board.name);
      if (marks === undefined) continue;
      this.#boards.get(board.name).published = JSON.stringify(marks);
      this.#publish(board.name, 'collected', { ...marks, fresh: true });
    }
  }

  // Refused messages are acknowledged: redelivering them would refuse them again.
  #refuse(topic: string, board: string, why: string[], done: (code: number) => void): void {
    this.refused += why.length;
    this.#refusalLogs.run('refused', () => this.#log.warn({ topic, board, refused: this.refused }, `Collector: dropped a message from ${JSON.stringify(board)}: ${why[0]}`));
    done(0);
  }
}
