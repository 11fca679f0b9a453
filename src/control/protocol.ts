// The control socket's protocol, shared by the daemon's server (server.ts) and every client
// (the CLI, HotplugClient): one JSON request line per connection; the answer is one JSON
// line, or for `subscribe` an answer line and then a stream of lines. Loads nothing native.
import { createConnection, type Socket } from 'node:net';
import { HotplugError } from '../errors.js';

/** The longest request line the daemon reads. */
export const MAX_REQUEST_BYTES = 64 * 1024;

export type ControlReply = { ok: true; [key: string]: unknown } | { ok: false; error: string; [key: string]: unknown };
export type ControlRequest = Record<string, unknown> & { command: string };

/** Sends one request to a running daemon and returns its reply. */
export function sendControlRequest(path: string, request: Record<string, unknown>, timeoutMs = 10_000): Promise<ControlReply> {
  return new Promise((resolve, reject) => {
    const socket = connectControl(path, reject);
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new HotplugError('ETIMEDOUT', `hotplugd did not answer on ${path} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    socket.on('data', (chunk: string) => (data += chunk));
    socket.once('error', () => clearTimeout(timer));
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

/** A connection to the control socket whose connection errors become clear HotplugErrors. */
export function connectControl(path: string, onError: (error: HotplugError) => void): Socket {
  const socket = createConnection(path);
  socket.setEncoding('utf8');
  socket.once('error', (error: NodeJS.ErrnoException) => {
    const reason = error.code === 'ENOENT' || error.code === 'ECONNREFUSED'
      ? 'is hotplugd running?'
      : error.code === 'EACCES'
        ? 'permission denied (root, or membership of the control group, is needed)'
        : error.message;
    onError(new HotplugError('ECONNECT', `Failed to reach hotplugd on ${path}: ${reason}`, { cause: error }));
  });
  return socket;
}

/**
 * Sends a request and hands each line of the reply stream to `onLine` (the first line is
 * the daemon's answer). Resolves when the daemon closes the stream.
 */
export function streamControlRequest(path: string, request: Record<string, unknown>, onLine: (line: string) => void): { done: Promise<void>; close(): void; pause(): void; resume(): void } {
  let socket: Socket;
  const done = new Promise<void>((resolve, reject) => {
    socket = connectControl(path, reject);
    let buffer = '';
    socket.once('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      let newline;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        onLine(line);
      }
    });
    socket.once('end', () => resolve());
    socket.once('close', () => resolve());
  });
  // pause() stops reading: the daemon then sees a slow subscriber (and may drop it).
  return { done, close: () => socket.destroy(), pause: () => socket.pause(), resume: () => socket.resume() };
}
