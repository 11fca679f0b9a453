// The control socket: a unix socket (mode 0600, or 0660 with a control group) taking
// one JSON request line per connection. Most commands answer one JSON line and close
// (the daemon's end too, whatever the client does); `subscribe` answers and then
// streams. Each peer's credentials decide what it may do: root (or the daemon's own
// user) everything, members of the control group the read-only commands, nobody else
// anything. Connections are capped in total and per uid, so clients cannot take the
// daemon's file descriptors (which reading sysfs needs).
import { chmodSync, chownSync, existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { HotplugError } from '../errors.js';
import { LogThrottle, type Logger } from '../log.js';
import { isSupplementaryMember } from '../os/accounts.js';
import { peerCredentials, type PeerCredentials } from '../os/system-calls.js';
import { isAnswering } from '../os/unix-socket.js';
import { MAX_REQUEST_BYTES, type ControlReply, type ControlRequest } from './protocol.js';
export type { ControlReply, ControlRequest };

/** A client has this long to send its request line. */
const REQUEST_TIMEOUT_MS = 10_000;
/** A client has this long to take an answer before its connection is dropped. */
const REPLY_TIMEOUT_MS = 10_000;

/** Connections open at once (subscribers included). */
export interface ControlLimits {
  total: number;
  perUid: number;
}
export const DEFAULT_CONTROL_LIMITS: ControlLimits = { total: 512, perUid: 256 };

/** A handler answers (now or later), or returns 'streaming' after taking the socket over. */
export type ControlHandler = (request: ControlRequest, client: ControlClient) => ControlReply | Promise<ControlReply> | 'streaming';

export interface ControlClient {
  socket: Socket;
  credentials: PeerCredentials | undefined;
}

export interface ControlCommand {
  /** Read-only commands are open to the control group; the others need root. */
  readOnly: boolean;
  handle: ControlHandler;
}

export interface ControlServerOptions {
  /** Group (gid) whose members may use read-only commands; the socket becomes 0660. */
  readGroup?: number | undefined;
  limits?: Partial<ControlLimits> | undefined;
  log: Logger;
}

export class ControlServer {
  refused = 0;
  malformed = 0;
  /** Connections refused because the total or their uid's limit was reached. */
  overLimit = 0;
  /** Connections the kernel could not hand over (accept failed: EMFILE, ENFILE, ...). */
  acceptFailures = 0;
  #server: Server | undefined;
  #path: string;
  #commands: Record<string, ControlCommand>;
  #options: ControlServerOptions;
  #limits: ControlLimits;
  #clients = new Set<Socket>();
  #perUid = new Map<number, number>();
  #overLimitLogs = new LogThrottle();

  constructor(path: string, commands: Record<string, ControlCommand>, options: ControlServerOptions) {
    this.#path = path;
    this.#commands = commands;
    this.#options = options;
    this.#limits = {
      total: options.limits?.total ?? DEFAULT_CONTROL_LIMITS.total,
      perUid: options.limits?.perUid ?? DEFAULT_CONTROL_LIMITS.perUid,
    };
  }

  /** The counters `hotplugd status` shows. */
  stats() {
    return {
      controlConnections: this.#clients.size,
      controlRefused: this.refused,
      controlMalformed: this.malformed,
      controlOverLimit: this.overLimit,
      controlAcceptFailures: this.acceptFailures,
    };
  }

  /** Listens; a stale socket file is replaced, a live one means another daemon runs. */
  async listen(): Promise<void> {
    const group = this.#options.readGroup;
    const dir = dirname(this.#path);
    mkdirSync(dir, { recursive: true, mode: group === undefined ? 0o700 : 0o750 });
    if (existsSync(this.#path)) {
      if (await isAnswering(this.#path)) throw new HotplugError('ERUNNING', `Another hotplugd answers on ${this.#path}; stop it first or use --control`);
      unlinkSync(this.#path);
    }
    const server = createServer((socket) => this.#serve(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // After listening, an error is a failed accept (out of descriptors): the daemon goes on.
    server.on('error', (error: NodeJS.ErrnoException) => {
      this.acceptFailures++;
      this.#options.log.warn({ code: error.code }, `Failed to accept a control connection: ${error.message}`);
    });
    if (group !== undefined) {
      chownSync(this.#path, process.getuid?.() ?? 0, group);
      chmodSync(this.#path, 0o660);
    } else {
      chmodSync(this.#path, 0o600);
    }
    this.#server = server;
  }

  close(): void {
    this.#server?.close();
    this.#server = undefined;
    for (const socket of this.#clients) socket.destroy();
    try {
      unlinkSync(this.#path);
    } catch {
      // already gone
    }
  }

  #serve(socket: Socket): void {
    const credentials = peerCredentials(socket);
    const uid = credentials?.uid ?? -1;
    const ofUid = this.#perUid.get(uid) ?? 0;
    if (this.#clients.size >= this.#limits.total || ofUid >= this.#limits.perUid) {
      this.#overLimit(uid, ofUid);
      socket.on('error', () => socket.destroy());
      this.#answerAndClose(socket, { ok: false, error: 'too many control connections; try again later' });
      return;
    }
    this.#clients.add(socket);
    this.#perUid.set(uid, ofUid + 1);
    socket.once('close', () => {
      this.#clients.delete(socket);
      const left = (this.#perUid.get(uid) ?? 1) - 1;
      if (left > 0) this.#perUid.set(uid, left);
      else this.#perUid.delete(uid);
    });
    let buffer = '';
    socket.setEncoding('utf8');
    socket.on('error', () => socket.destroy());
    socket.setTimeout(REQUEST_TIMEOUT_MS, () => socket.destroy());
    const onData = (chunk: string) => {
      buffer += chunk;
      const newline = buffer.indexOf('\n');
      if (newline < 0 && buffer.length <= MAX_REQUEST_BYTES) return;
      socket.off('data', onData);
      socket.setTimeout(0);
      if (newline < 0) {
        this.#refuse(socket, credentials, `request longer than ${MAX_REQUEST_BYTES} bytes`);
        return;
      }
      void this.#dispatch(buffer.slice(0, newline), { socket, credentials });
    };
    socket.on('data', onData);
  }

  // One line per interval at most: an attacker's thousands of connections must not flood the log.
  #overLimit(uid: number, ofUid: number): void {
    this.overLimit++;
    this.#overLimitLogs.run('over-limit', (heldBack) =>
      this.#options.log.warn(
        { uid, ofUid, total: this.#clients.size, limits: this.#limits, refusedSinceLastLine: heldBack + 1, refused: this.overLimit },
        'Refused control connections: too many open',
      ),
    );
  }

  /** Sends the last line and closes the daemon's end, even when the client keeps its end open or stops reading. */
  #answerAndClose(socket: Socket, reply: ControlReply): void {
    const timer = setTimeout(() => socket.destroy(), REPLY_TIMEOUT_MS);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
    socket.end(`${JSON.stringify(reply)}\n`, () => socket.destroy());
  }

  #refuse(socket: Socket, credentials: PeerCredentials | undefined, error: string, permission = false): void {
    if (permission) this.refused++;
    else this.malformed++;
    this.#options.log.warn({ peer: credentials }, `Refused a control request: ${error}`);
    this.#answerAndClose(socket, { ok: false, error });
  }

  async #dispatch(line: string, client: ControlClient): Promise<void> {
    const { socket, credentials } = client;
    let request: unknown;
    try {
      request = JSON.parse(line);
    } catch {
      this.#refuse(socket, credentials, 'request is not JSON');
      return;
    }
    if (typeof request !== 'object' || request === null || Array.isArray(request) || typeof (request as { command?: unknown }).command !== 'string') {
      this.#refuse(socket, credentials, 'expected {"command": "..."}');
      return;
    }
    const name = (request as ControlRequest).command;
    const command = Object.hasOwn(this.#commands, name) ? this.#commands[name] : undefined;
    if (!command) {
      this.#refuse(socket, credentials, `unknown command ${JSON.stringify(name)} (known: ${Object.keys(this.#commands).join(', ')})`);
      return;
    }
    const denied = this.#denied(command, credentials);
    if (denied) {
      this.#refuse(socket, credentials, `${name}: ${denied}`, true);
      return;
    }
    let reply: ControlReply | 'streaming';
    try {
      reply = await command.handle(request as ControlRequest, client);
    } catch (error) {
      reply = { ok: false, error: (error as Error).message };
    }
    if (reply !== 'streaming' && !socket.destroyed) this.#answerAndClose(socket, reply);
  }

  #denied(command: ControlCommand, credentials: PeerCredentials | undefined): string | undefined {
    if (!credentials) return 'permission denied (the peer cannot be identified)';
    if (credentials.uid === 0 || credentials.uid === process.getuid?.()) return undefined;
    // SO_PEERCRED gives the primary gid only; supplementary membership comes from /etc/group.
    if (!command.readOnly) return `permission denied (needs root; uid ${credentials.uid} may only use read-only commands)`;
    const group = this.#options.readGroup;
    if (group !== undefined && (credentials.gid === group || isSupplementaryMember(credentials.uid, group))) return undefined;
    return `permission denied (uid ${credentials.uid} is not in the control group)`;
  }
}

