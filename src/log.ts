// pino: JSON lines for machines by default, readable lines when a person watches a TTY.
import type { Logger, LevelWithSilent } from 'pino';
import { createRequire } from 'node:module';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export function isLogLevel(value: string): value is LevelWithSilent {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

/** Logs go to stderr so that command output on stdout stays clean. */
export async function createLogger(level: LevelWithSilent = 'info', format: 'auto' | 'json' | 'pretty' = 'auto'): Promise<Logger> {
  // pino is loaded when a logger is made: commands that log nothing (test, info, history...)
  // do not pay its ~25 ms of module loading at start. The bundle carries it (no module
  // resolution at run time); pino-pretty, for a person at a terminal, is loaded from disk.
  const { pino } = await import('pino');
  const require = createRequire(import.meta.url);
  const usePretty = format === 'pretty' || (format === 'auto' && process.stderr.isTTY);
  // pino-pretty is loaded only for a person at a terminal: it costs the daemon's start-up.
  const destination = usePretty
    ? (require('pino-pretty') as typeof import('pino-pretty'))({ destination: 2, sync: true, colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' })
    : pino.destination({ dest: 2, sync: true });
  return pino({ level, base: { pid: process.pid } }, destination);
}

/**
 * One log line per kind per interval at most: a flood of clients, datagrams or messages must
 * not flood the log. `log` is told how many lines of that kind were held back since the last.
 */
export class LogThrottle {
  #intervalMs: number;
  #last = new Map<string, { at: number; heldBack: number }>();

  constructor(intervalMs = 10_000) {
    this.#intervalMs = intervalMs;
  }

  run(kind: string, log: (heldBack: number) => void): void {
    const now = Date.now();
    const last = this.#last.get(kind);
    if (last !== undefined && now - last.at < this.#intervalMs) {
      last.heldBack++;
      return;
    }
    this.#last.set(kind, { at: now, heldBack: 0 });
    log(last?.heldBack ?? 0);
  }
}
