// udev's control socket (/run/udev/control) and queue flag (/run/udev/queue), served so
// that the real udevadm drives hotplugd unchanged: `udevadm control --ping|--reload|
// --exit|--log-level`, `udevadm settle`, `udevadm trigger --settle`. The protocol, read
// from systemd's udev-ctrl.c and udevadm-settle.c (v252): SOCK_SEQPACKET, one 280-byte
// message each (16-byte version, magic 0xdead1dea, int type, 256-byte value), root
// senders only; after its last message a client sends END and waits for the daemon to
// close the connection, which it does once the queue is idle: that is what makes a ping
// mean "settled". /run/udev/queue exists exactly while events are queued or running.
import { closeSync, mkdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { endianness } from 'node:os';
import { HotplugError, describeError } from '../errors.js';
import type { Logger } from '../log.js';
import { FdWatcher } from '../os/netlink.js';
import { isAnswering } from '../os/unix-socket.js';
import { acceptPeer, recvMessage, seqpacketListen } from '../os/system-calls.js';

export const UDEV_CTRL_MAGIC = 0xdead1dea;
export const UDEV_CTRL_MESSAGE_BYTES = 280;
export const UDEV_CTRL = { END: 0, SET_LOG_LEVEL: 1, STOP_EXEC_QUEUE: 2, START_EXEC_QUEUE: 3, RELOAD: 4, SET_ENV: 5, SET_CHILDREN_MAX: 6, PING: 7, EXIT: 8 } as const;
const TYPE_NAMES = Object.fromEntries(Object.entries(UDEV_CTRL).map(([name, type]) => [type, name])) as Record<number, string>;
const MAX_CONNECTIONS = 32;
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
  watcher: FdWatcher;
  ended: boolean;
}

export class UdevControlServer {
  /** Connections and messages refused: not root, or too many connections. */
  refused = 0;
  /** Messages of the wrong size or magic. */
  malformed = 0;
  messages = 0;
  #path: string;
  #target: UdevControlTarget;
  #listener: FdWatcher | undefined;
  #listenerFd = -1;
  #connections = new Set<Connection>();
  #buffer = Buffer.alloc(UDEV_CTRL_MESSAGE_BYTES + 1);

  constructor(path: string, target: UdevControlTarget) {
    this.#path = path;
    this.#target = target;
  }

  async listen(): Promise<void> {
    mkdirSync(dirname(this.#path), { recursive: true, mode: 0o755 });
    if (await isAnswering(this.#path)) throw new HotplugError('ERUNNING', `udevd (or another hotplugd) answers on ${this.#path}; stop it first`);
    const fd = seqpacketListen(this.#path);
    this.#listenerFd = fd;
    this.#listener = new FdWatcher(fd, () => this.#accept());
  }

  close(): void {
    for (const connection of this.#connections) connection.watcher.close();
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
      let peer;
      try {
        peer = acceptPeer(this.#listenerFd);
      } catch (error) {
        this.#target.logger.warn({ err: error }, `Failed to accept a udev control connection: ${describeError(error)}`);
        return;
      }
      if (peer === null) return;
      if (peer.uid !== 0 || this.#connections.size >= MAX_CONNECTIONS) {
        this.refused++;
        this.#target.logger.warn({ uid: peer.uid, pid: peer.pid, connections: this.#connections.size },
          peer.uid !== 0 ? `Refused a udev control connection from uid ${peer.uid}: only root may control udev` : 'Refused a udev control connection: too many open');
        closeSync(peer.fd);
        continue;
      }
      const connection: Connection = { watcher: new FdWatcher(peer.fd, () => this.#read(connection, peer.fd)), ended: false };
      this.#connections.add(connection);
    }
  }

  #drop(connection: Connection): void {
    this.#connections.delete(connection);
    connection.watcher.close();
  }

  #read(connection: Connection, fd: number): void {
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
  #beforeIdle: () => void;

  /** `beforeIdle` runs before the flag goes (the history is committed: settled means recorded). */
  constructor(path: string, log: Logger, beforeIdle: () => void = () => {}) {
    this.#path = path;
    this.#log = log;
    this.#beforeIdle = beforeIdle;
  }

  busy(): void {
    try {
      writeFileSync(this.#path, '');
    } catch (error) {
      this.#log.warn({ err: error }, `Failed to create ${this.#path}: ${describeError(error)}`);
    }
  }

  idle(): void {
    try {
      this.#beforeIdle();
    } catch (error) {
      this.#log.warn({ err: error }, `Failed to commit the history before removing ${this.#path}: ${describeError(error)}`);
    }
    try {
      unlinkSync(this.#path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') this.#log.warn({ err: error }, `Failed to remove ${this.#path}: ${describeError(error)}`);
    }
  }
}
