// The web server's connections, held to account: a client must finish a request's headers
// within the header time of connecting (or of its previous answer), an idle keep-alive
// connection goes after the idle time, and open connections are capped in total and per remote
// address. At a cap the oldest idle connection makes room, so a client that asks is served
// however many others connect and say nothing; only when none is idle is a newcomer refused.
// Connections busy with a request or a live stream are never closed for being quiet.
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { LogThrottle, type Logger } from '../log.js';

export interface ConnectionLimits {
  /** Open connections at most (default 256). */
  maxConnections: number;
  /** Open connections from one address at most (default 64). */
  maxPerAddress: number;
  /** A request's headers must be complete this long after connecting or the previous answer (default 10 s). */
  headerTimeoutMs: number;
  /** An idle keep-alive connection is closed after this long (default 5 s). */
  idleTimeoutMs: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = { maxConnections: 256, maxPerAddress: 64, headerTimeoutMs: 10_000, idleTimeoutMs: 5_000 };

interface Tracked {
  socket: Socket;
  address: string;
  /** Requests in flight (or a live stream) on it. */
  busy: number;
  /** When it last became idle: the oldest idle connection goes first. */
  idleSince: number;
  /** Whether it has answered a request (then the idle time applies, else the header time). */
  answered: boolean;
  timer: NodeJS.Timeout | undefined;
}

export class ConnectionGuard {
  readonly limits: ConnectionLimits;
  /** Closed for not finishing a request's headers in time, or for staying idle. */
  timedOut = 0;
  /** Idle connections closed to make room for a new one at a cap. */
  evicted = 0;
  /** New connections closed at once: at a cap with no idle connection to close. */
  refused = 0;
  #open = new Map<Socket, Tracked>();
  #perAddress = new Map<string, number>();
  #log: Logger;
  #logs = new LogThrottle();

  constructor(server: Server, log: Logger, limits: Partial<ConnectionLimits> = {}) {
    this.limits = { ...DEFAULT_CONNECTION_LIMITS, ...limits };
    this.#log = log;
    server.on('connection', (socket: Socket) => this.#connected(socket));
    server.on('request', (req, res) => {
      const tracked = this.#open.get(req.socket);
      if (tracked === undefined) return;
      this.#busy(tracked, true);
      res.once('close', () => this.#busy(tracked, false));
    });
  }

  get open(): number {
    return this.#open.size;
  }

  stats() {
    return { open: this.#open.size, timedOut: this.timedOut, evicted: this.evicted, refused: this.refused, limits: this.limits };
  }

  #connected(socket: Socket): void {
    const address = socket.remoteAddress ?? 'local';
    const fromAddress = this.#perAddress.get(address) ?? 0;
    if ((fromAddress >= this.limits.maxPerAddress && !this.#evict(address)) || (this.#open.size >= this.limits.maxConnections && !this.#evict(undefined))) {
      this.refused++;
      this.#logs.run('refused', () => this.#log.warn({ address, open: this.#open.size }, 'serve: refused a connection: at the limit of open connections and none idle'));
      socket.destroy();
      return;
    }
    const tracked: Tracked = { socket, address, busy: 0, idleSince: Date.now(), answered: false, timer: undefined };
    this.#open.set(socket, tracked);
    this.#perAddress.set(address, (this.#perAddress.get(address) ?? 0) + 1);
    socket.once('close', () => this.#closed(tracked));
    this.#arm(tracked);
  }

  #busy(tracked: Tracked, busy: boolean): void {
    tracked.busy += busy ? 1 : -1;
    if (tracked.busy > 0) {
      clearTimeout(tracked.timer);
      tracked.timer = undefined;
      return;
    }
    tracked.answered = true;
    tracked.idleSince = Date.now();
    this.#arm(tracked);
  }

  // Closes the connection unless a request starts in time.
  #arm(tracked: Tracked): void {
    clearTimeout(tracked.timer);
    const ms = tracked.answered ? this.limits.idleTimeoutMs : this.limits.headerTimeoutMs;
    tracked.timer = setTimeout(() => {
      if (tracked.busy > 0 || !this.#open.has(tracked.socket)) return;
      this.timedOut++;
      this.#logs.run('timedOut', () => this.#log.info({ address: tracked.address, ms }, tracked.answered ? 'serve: closed an idle connection' : 'serve: closed a connection that sent no complete request in time'));
      tracked.socket.destroy();
    }, ms);
    tracked.timer.unref();
  }

  // The oldest idle connection (from `address`, or from anyone) goes; false when none is idle.
  #evict(address: string | undefined): boolean {
    let oldest: Tracked | undefined;
    for (const tracked of this.#open.values()) {
      if (tracked.busy > 0 || (address !== undefined && tracked.address !== address)) continue;
      if (oldest === undefined || tracked.idleSince < oldest.idleSince) oldest = tracked;
    }
    if (oldest === undefined) return false;
    this.evicted++;
    this.#logs.run('evicted', () => this.#log.info({ address: oldest.address, open: this.#open.size }, 'serve: at the limit of open connections: closed the oldest idle one'));
    oldest.socket.destroy();
    this.#closed(oldest);
    return true;
  }

  #closed(tracked: Tracked): void {
    if (!this.#open.delete(tracked.socket)) return;
    clearTimeout(tracked.timer);
    const left = (this.#perAddress.get(tracked.address) ?? 1) - 1;
    if (left > 0) this.#perAddress.set(tracked.address, left);
    else this.#perAddress.delete(tracked.address);
  }
}
