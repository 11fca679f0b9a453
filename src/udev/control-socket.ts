// udev's control socket (/run/udev/control) and queue flag (/run/udev/queue), served so
// that the real udevadm drives hotplugd unchanged: `udevadm control --ping|--reload|
// --exit|--log-level`, `udevadm settle`, `udevadm trigger --settle`. The protocol, read
// from systemd's udev-ctrl.c and udevadm-settle.c (v252): SOCK_SEQPACKET, one 280-byte
// message each (16-byte version, magic 0xdead1dea, int type, 256-byte value), root
// senders only; after its last message a client sends END and waits for the daemon to
// close the connection, which it does once the queue is idle: that is what makes a ping
// mean "settled". /run/udev/queue exists exactly while events are queued or running.
// A closed connection is an answer that means success to udevadm, so a root client is never
// refused by closing it: a connection that says nothing for IDLE_MS is closed (it never sent
// END: it was asking nothing), the oldest silent one makes room for a newcomer at the cap, and
// when every open connection is waiting for its settle, new ones wait in the listen backlog
// (as udevd, which takes one connection at a time) until one ends.
import { closeSync, mkdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { endianness } from 'node:os';
import { HotplugError, describeError } from '../errors.js';
import { LogThrottle, type Logger } from '../log.js';
import { FdWatcher } from '../os/netlink.js';
import { isAnswering } from '../os/unix-socket.js';
import { acceptPeer, recvMessage, seqpacketListen } from '../os/system-calls.js';

export const UDEV_CTRL_MAGIC = 0xdead1dea;
export const UDEV_CTRL_MESSAGE_BYTES = 280;
export const UDEV_CTRL = { END: 0, SET_LOG_LEVEL: 1, STOP_EXEC_QUEUE: 2, START_EXEC_QUEUE: 3, RELOAD: 4, SET_ENV: 5, SET_CHILDREN_MAX: 6, PING: 7, EXIT: 8 } as const;
const TYPE_NAMES = Object.fromEntries(Object.entries(UDEV_CTRL).map(([name, type]) => [type, name])) as Record<number, string>;
const MAX_CONNECTIONS = 32;
/** A connection that has sent no complete message (and not END) for this long is closed. */
export const UDEV_CONTROL_IDLE_MS = 3_000;
const LITTLE_ENDIAN = endianness() === 'LE';

/** syslog priorities (what udevadm --log-level sends) as our log levels. */
const SYSLOG_LEVELS = ['fatal', 'fatal', 'fatal', 'error', 'warn', 'info', 'info', 'debug'] as const;

export type UdevControlMessage = { type: number; name: string; intval: number; text: string };

/** Decodes one message; an Error says why it is refused (size, magic). */
export function parseUdevControlMessage(bytes: Buffer): UdevControlMessage | Error {
  if (bytes.length !== UDEV_CTRL_MESSAGE_BYTES) return new Error(`expected a ${UDEV_CTRL_MESSAGE_BYTES}-byte message, got ${bytes.length} bytes`);
  const read = (offset: number) => (LITTLE_ENDIAN ? bytes.readInt32LE(offset) : bytes.readInt32BE(offset));
  const magic = read(16) >>> 0;
  if (magic !== UDEV_CTRL_MAGIC) return new Error(`wrong magic 0x${magic.toString(16).padStart(8, '0')}`);
  const type = read(20);
  const value = bytes.subarray(24, 280);
  const nul = value.indexOf(0);
  return { type, name: TYPE_NAMES[type] ?? `unknown type ${type}`, intval: read(24), text: value.subarray(0, nul < 0 ? value.length : nul).toString('utf8') };
}

/** What the messages ask of the daemon. */
export interface UdevControlTarget {
  readonly logger: Logger;
  reload(): unknown;
  requestExit(): void;
  /** STOP_EXEC_QUEUE / START_EXEC_QUEUE: events wait (still queued) or go on. */
  holdEvents(hold: boolean): void;
  readonly eventsHeld: boolean;
  setMaxEvents(count: number): void;
  /** Resolves once every event the kernel has sent so far is processed. */
  settle(timeoutMs: number): Promise<boolean>;
  /** Commits what the history holds: "settled" means recorded too. */
  commitHistory(): void;
}

interface Connection {
  fd: number;
  watcher: FdWatcher;
  ended: boolean;
  /** Closes the connection when it stays silent (reset by each message, cleared by END). */
  idle: NodeJS.Timeout | undefined;
  openedAt: number;
}

export interface UdevControlOptions {
  maxConnections?: number;
  idleMs?: number;
}

export class UdevControlServer {
  /** Connections and messages refused: not root. */
  refused = 0;
  /** Silent connections closed to make room for a new client at the cap. */
  evicted = 0;
  /** Connections closed for saying nothing within the idle time. */
  timedOut = 0;
  /** Times every connection was waiting for a settle and new clients waited in the backlog. */
  backlogged = 0;
  /** Messages of the wrong size or magic. */
  malformed = 0;
  messages = 0;
  #path: string;
  #target: UdevControlTarget;
  #listener: FdWatcher | undefined;
  #listenerFd = -1;
  #connections = new Set<Connection>();
  #buffer = Buffer.alloc(UDEV_CTRL_MESSAGE_BYTES + 1);
  #maxConnections: number;
  #idleMs: number;
  #accepting = true;
  #logs = new LogThrottle();

  constructor(path: string, target: UdevControlTarget, options: UdevControlOptions = {}) {
    this.#path = path;
    this.#target = target;
    this.#maxConnections = options.maxConnections ?? MAX_CONNECTIONS;
    this.#idleMs = options.idleMs ?? UDEV_CONTROL_IDLE_MS;
  }

  /** Connections open now. */
  get connections(): number {
    return this.#connections.size;
  }

  async listen(): Promise<void> {
    mkdirSync(dirname(this.#path), { recursive: true, mode: 0o755 });
    if (await isAnswering(this.#path)) throw new HotplugError('ERUNNING', `udevd (or another hotplugd) answers on ${this.#path}; stop it first`);
    const fd = seqpacketListen(this.#path);
    this.#listenerFd = fd;
    this.#listener = new FdWatcher(fd, () => this.#accept());
  }

  close(): void {
    for (const connection of this.#connections) {
      clearTimeout(connection.idle);
      connection.watcher.close();
    }
    this.#connections.clear();
    this.#listener?.close();
    this.#listener = undefined;
    try {
      unlinkSync(this.#path);
    } catch {
      // already gone
    }
  }

  #accept(): void {
    for (;;) {
      if (this.#connections.size >= this.#maxConnections && !this.#makeRoom()) {
        // Every connection waits for its settle: the next client waits in the backlog.
        this.backlogged++;
        this.#accepting = false;
        this.#listener?.pause(true);
        this.#logs.run('backlog', () => this.#target.logger.warn({ connections: this.#connections.size }, 'udev control: every connection is waiting for a settle; new clients wait until one ends'));
        return;
      }
      let peer;
      try {
        peer = acceptPeer(this.#listenerFd);
      } catch (error) {
        this.#target.logger.warn({ err: error }, `Failed to accept a udev control connection: ${describeError(error)}`);
        return;
      }
      if (peer === null) return;
      if (peer.uid !== 0) {
        this.refused++;
        this.#logs.run('refused', () => this.#target.logger.warn({ uid: peer.uid, pid: peer.pid }, `Refused a udev control connection from uid ${peer.uid}: only root may control udev`));
        closeSync(peer.fd);
        continue;
      }
      const connection: Connection = { fd: peer.fd, watcher: new FdWatcher(peer.fd, () => this.#read(connection)), ended: false, idle: undefined, openedAt: Date.now() };
      this.#connections.add(connection);
      this.#waitForWords(connection);
    }
  }

  // The oldest connection that has not sent END is closed to make room; false when all have.
  // What a connection has sent is read first: one whose END is waiting unread is not silent.
  #makeRoom(): boolean {
    const byAge = [...this.#connections].sort((a, b) => a.openedAt - b.openedAt);
    const oldest = byAge.find((connection) => {
      if (connection.ended) return false;
      this.#read(connection);
      return this.#connections.has(connection) && !connection.ended;
    });
    if (this.#connections.size < this.#maxConnections) return true;
    if (oldest === undefined) return false;
    this.evicted++;
    this.#logs.run('evicted', () => this.#target.logger.warn({ connections: this.#connections.size }, 'udev control: at the limit of open connections; closed the oldest that had not finished its request'));
    this.#drop(oldest);
    return true;
  }

  #waitForWords(connection: Connection): void {
    clearTimeout(connection.idle);
    connection.idle = setTimeout(() => {
      if (connection.ended || !this.#connections.has(connection)) return;
      this.timedOut++;
      this.#logs.run('timedOut', () => this.#target.logger.warn({ idleMs: this.#idleMs }, `udev control: closed a connection that sent nothing for ${this.#idleMs} ms`));
      this.#drop(connection);
    }, this.#idleMs);
    connection.idle.unref();
  }

  #drop(connection: Connection): void {
    clearTimeout(connection.idle);
    this.#connections.delete(connection);
    connection.watcher.close();
    if (!this.#accepting && this.#connections.size < this.#maxConnections) {
      this.#accepting = true;
      this.#listener?.pause(false);
      // Clients may be waiting in the backlog already: take them now.
      setImmediate(() => this.#accept());
    }
  }

  #read(connection: Connection): void {
    const fd = connection.fd;
    while (this.#connections.has(connection)) {
      let received;
      try {
        received = recvMessage(fd, this.#buffer);
      } catch (error) {
        this.#target.logger.warn({ err: error }, `Failed to read a udev control message: ${describeError(error)}`);
        this.#drop(connection);
        return;
      }
      if (received === null) return;
      if (received.size === 0) {
        this.#drop(connection);
        return;
      }
      if (received.uid !== 0) {
        this.refused++;
        this.#target.logger.warn({ uid: received.uid }, `Refused a udev control message from uid ${received.uid}: only root may control udev`);
        this.#drop(connection);
        return;
      }
      const message = parseUdevControlMessage(this.#buffer.subarray(0, Math.min(received.size, this.#buffer.length)));
      if (message instanceof Error || received.size > UDEV_CTRL_MESSAGE_BYTES) {
        this.malformed++;
        this.#target.logger.warn({ size: received.size }, `Refused a udev control message: ${message instanceof Error ? message.message : 'too long'}`);
        this.#drop(connection);
        return;
      }
      this.messages++;
      this.#waitForWords(connection);
      this.#handle(connection, message);
    }
  }

  #handle(connection: Connection, message: UdevControlMessage): void {
    const target = this.#target;
    const log = target.logger;
    log.debug({ type: message.name }, `Received udev control message (${message.name})`);
    switch (message.type) {
      case UDEV_CTRL.END:
        if (connection.ended) return;
        connection.ended = true;
        clearTimeout(connection.idle);
        // Closed once the queue is idle (at once while events are held: they will not end).
        void (target.eventsHeld ? Promise.resolve(true) : target.settle(24 * 3600_000)).then(() => {
          target.commitHistory();
          this.#drop(connection);
        });
        return;
      case UDEV_CTRL.SET_LOG_LEVEL: {
        const level = SYSLOG_LEVELS[message.intval];
        if (level === undefined) log.warn({ priority: message.intval }, `udev control: log level ${message.intval} is not a syslog priority (0-7); ignored`);
        else {
          log.level = level;
          log.info({ logLevel: level, priority: message.intval }, 'Log level changed (udev control)');
        }
        return;
      }
      case UDEV_CTRL.STOP_EXEC_QUEUE:
      case UDEV_CTRL.START_EXEC_QUEUE:
        target.holdEvents(message.type === UDEV_CTRL.STOP_EXEC_QUEUE);
        log.info(`Event processing ${message.type === UDEV_CTRL.STOP_EXEC_QUEUE ? 'stopped' : 'started'} (udev control)`);
        return;
      case UDEV_CTRL.RELOAD:
        target.reload();
        return;
      case UDEV_CTRL.SET_CHILDREN_MAX:
        if (message.intval > 0) target.setMaxEvents(message.intval);
        return;
      case UDEV_CTRL.PING:
        return;
      case UDEV_CTRL.EXIT:
        target.requestExit();
        return;
      default:
        // SET_ENV (global properties for every event) is not supported: said, not silently dropped.
        log.warn({ type: message.name, value: message.text }, `udev control message ${message.name} is not supported by hotplugd; ignored`);
    }
  }
}

/** /run/udev/queue: present exactly while events are queued or running (udevadm settle waits on it). */
export class UdevQueueFlag {
  #path: string;
  #log: Logger;
  #beforeIdle: () => void | Promise<void>;
  #generation = 0;

  /**
   * `beforeIdle` runs before the flag goes (the history is committed: settled means recorded);
   * when it returns a promise, the flag goes once it settles, unless events came meanwhile.
   */
  constructor(path: string, log: Logger, beforeIdle: () => void | Promise<void> = () => {}) {
    this.#path = path;
    this.#log = log;
    this.#beforeIdle = beforeIdle;
  }

  busy(): void {
    this.#generation++;
    try {
      writeFileSync(this.#path, '');
    } catch (error) {
      this.#log.warn({ err: error }, `Failed to create ${this.#path}: ${describeError(error)}`);
    }
  }

  idle(): void {
    const generation = ++this.#generation;
    let before: void | Promise<void> = undefined;
    try {
      before = this.#beforeIdle();
    } catch (error) {
      this.#log.warn({ err: error }, `Failed to commit the history before removing ${this.#path}: ${describeError(error)}`);
    }
    if (before instanceof Promise) {
      void before.then(() => generation === this.#generation && this.#remove());
      return;
    }
    this.#remove();
  }

  #remove(): void {
    try {
      unlinkSync(this.#path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') this.#log.warn({ err: error }, `Failed to remove ${this.#path}: ${describeError(error)}`);
    }
  }
}
