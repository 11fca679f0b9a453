// pino: JSON lines for machines by default, readable lines when a person watches a TTY.
import { pino, type Logger, type LevelWithSilent } from 'pino';
import { createRequire } from 'node:module';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export function isLogLevel(value: string): value is LevelWithSilent {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

/** Logs go to stderr so that command output on stdout stays clean. */
export function createLogger(level: LevelWithSilent = 'info', format: 'auto' | 'json' | 'pretty' = 'auto'): Logger {
  const usePretty = format === 'pretty' || (format === 'auto' && process.stderr.isTTY);
  // pino-pretty is loaded only for a person at a terminal: it costs the daemon's start-up.
  const destination = usePretty
    ? (createRequire(import.meta.url)('pino-pretty') as typeof import('pino-pretty'))({ destination: 2, sync: true, colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' })
    : pino.destination({ dest: 2, sync: true });
  return pino({ level, base: { pid: process.pid } }, destination);
}
