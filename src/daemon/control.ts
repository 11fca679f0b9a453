// The control socket: a unix socket taking one JSON request line per connection and
// answering one JSON line. Only `reload` for now; status, settle and subscribe come
// with the daemon issue.
import { chmodSync, existsSync, mkdirSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { HotplugError } from '../errors.js';

/** /run/hotplugd/control.sock as root; for other users, under their runtime directory. */
export function defaultControlPath(): string {
  if (process.getuid?.() === 0) return '/run/hotplugd/control.sock';
  const runtime = process.env.XDG_RUNTIME_DIR || join(tmpdir(), `hotplugd-${process.getuid?.() ?? 'user'}`);
  return join(runtime, 'hotplugd', 'control.sock');
}
const MAX_REQUEST_BYTES = 64 * 1024;

export type ControlReply = { ok: true; [key: string]: unknown } | { ok: false; error: string; [key: string]: unknown };
export type ControlHandler = (request: Record<string, unknown>) => ControlReply;

/** True when a daemon answers on the socket (so it must not be replaced). */
function isAnswering(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export class ControlServer {
  #server: Server | undefined;
  #path: string;
  #handlers: Record<string, ControlHandler>;

  constructor(path: string, handlers: Record<string, ControlHandler>) {
    this.#path = path;
    this.#handlers = handlers;
  }

  /** Listens; a stale socket file is replaced, a live one means another daemon runs. */
  async listen(): Promise<void> {
    mkdirSync(dirname(this.#path), { recursive: true, mode: 0o700 });
    if (existsSync(this.#path)) {
      if (await isAnswering(this.#path)) throw new HotplugError('ERUNNING', `Another hotplugd answers on ${this.#path}; stop it first or use --control`);
      unlinkSync(this.#path);
    }
    const server = createServer((socket) => this.#serve(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#path, () => resolve());
    });
    chmodSync(this.#path, 0o600);
    this.#server = server;
  }

  close(): void {
    this.#server?.close();
    this.#server = undefined;
    try {
      unlinkSync(this.#path);
    } catch {
      // already gone
    }
  }

  #serve(socket: Socket): void {
    let buffer = '';
    socket.setEncoding('utf8');
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      const newline = buffer.indexOf('\n');
      if (newline < 0 && buffer.length <= MAX_REQUEST_BYTES) return;
      socket.removeAllListeners('data');
      const reply = newline < 0 ? { ok: false, error: `request longer than ${MAX_REQUEST_BYTES} bytes` } : this.#dispatch(buffer.slice(0, newline));
      socket.end(`${JSON.stringify(reply)}\n`);
    });
  }

  #dispatch(line: string): ControlReply {
    let request: unknown;
    try {
      request = JSON.parse(line);
    } catch {
      return { ok: false, error: 'request is not JSON' };
    }
    if (typeof request !== 'object' || request === null || typeof (request as { command?: unknown }).command !== 'string') {
      return { ok: false, error: 'expected {"command": "..."}' };
    }
    const command = (request as { command: string }).command;
    const handler = Object.hasOwn(this.#handlers, command) ? this.#handlers[command] : undefined;
    if (!handler) return { ok: false, error: `unknown command ${JSON.stringify(command)} (known: ${Object.keys(this.#handlers).join(', ')})` };
    try {
      return handler(request as Record<string, unknown>);
    } catch (error) {
      return { ok: false, error: (error as Error).message };
    }
  }
}

/** Sends one request to a running daemon and returns its reply. */
export function sendControlRequest(path: string, request: Record<string, unknown>, timeoutMs = 10_000): Promise<ControlReply> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new HotplugError('ETIMEDOUT', `hotplugd did not answer on ${path} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.once('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    socket.on('data', (chunk: string) => (data += chunk));
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const reason = error.code === 'ENOENT' || error.code === 'ECONNREFUSED' ? 'is hotplugd running?' : error.message;
      reject(new HotplugError('ECONNECT', `Failed to reach hotplugd on ${path}: ${reason}`, { cause: error }));
    });
    socket.once('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(data) as ControlReply);
      } catch {
        reject(new HotplugError('EPROTO', `hotplugd sent an unreadable reply on ${path}`));
      }
    });
  });
}
