// What each control command does. Read-only ones (status, settle, subscribe, wait)
// are open to the control group; the rest need root. They see the daemon only through
// ControlTarget: what the commands need, and nothing else.
import type { Socket } from 'node:net';
import type { HistoryDb } from '../history/db.js';
import { cursorForTime } from '../history/records.js';
import { isLogLevel, LOG_LEVELS, type Logger } from '../log.js';
import { parseTimeArg } from '../text/units.js';
import type { ControlCommand, ControlReply, ControlRequest } from './server.js';
import type { SubscriptionFilter } from './subscribers.js';
import type { WaitTarget } from './waiters.js';

/** What control commands may ask of the daemon. */
export interface ControlTarget {
  readonly logger: Logger;
  status(withRuleMetrics: boolean): Record<string, unknown>;
  /** Loads the rules again; `replaced` false when the new ones have errors (the old stay). */
  reload(): { replaced: boolean; rules: number; files: number; version: number; diagnostics: unknown[] };
  /** True once every event the kernel has sent so far is processed; false after `timeoutMs`. */
  settle(timeoutMs: number): Promise<boolean>;
  /** Events processed so far, and queued now. */
  progress(): { processed: number; queued: number };
  wait(target: WaitTarget, timeoutMs: number): Promise<boolean>;
  /** The history for replay cursors; `commit()` writes what waits and returns the newest id. */
  history(): { db: HistoryDb; commit(): number };
  /** Writes `greeting`, then streams; throws (nothing written) when there are too many subscribers. */
  subscribe(socket: Socket, filter: SubscriptionFilter, greeting: string, replay: { afterId: number; upToId: number } | undefined): void;
  requestExit(): void;
}

/** Longest a client may ask the daemon to wait (settle, wait). */
const MAX_WAIT_MS = 24 * 3600 * 1000;
const DEFAULT_WAIT_MS = 120_000;

function stringList(request: ControlRequest, key: string): string[] | undefined {
  const value = request[key];
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) throw new Error(`${key}: expected a list of strings`);
  return value as string[];
}

function timeout(request: ControlRequest): number {
  const value = request.timeoutMs ?? DEFAULT_WAIT_MS;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new Error('timeoutMs: expected a number of milliseconds');
  return Math.min(value, MAX_WAIT_MS);
}

/** A replay cursor: a history id, or a time (ISO 8601, today, yesterday, or a duration ago such as "10m" or "2d"). */
function cursor(db: HistoryDb, value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0) return value;
  if (typeof value === 'string') {
    const time = parseTimeArg(value);
    if (time !== undefined) return cursorForTime(db, time);
  }
  throw new Error(`cursor: expected a history id, a time (ISO 8601, today, yesterday) or a duration ago such as "10m" or "2d"; got ${JSON.stringify(value)}`);
}

export function controlCommands(daemon: ControlTarget): Record<string, ControlCommand> {
  return {
    status: {
      readOnly: true,
      handle: (request) => ({ ok: true, ...daemon.status(request.rules === true) }),
    },
    reload: {
      readOnly: false,
      handle: (): ControlReply => {
        const outcome = daemon.reload();
        const reply = { rules: outcome.rules, files: outcome.files, version: outcome.version, diagnostics: outcome.diagnostics };
        return outcome.replaced ? { ok: true, ...reply } : { ok: false, error: 'the new rules have errors; the previous rules stay in use', ...reply };
      },
    },
    settle: {
      readOnly: true,
      handle: async (request): Promise<ControlReply> => {
        const ms = timeout(request);
        if (!(await daemon.settle(ms))) return { ok: false, error: `events still queued after ${ms} ms`, queued: daemon.progress().queued };
        // Settled means recorded too: what waits in the history writer is committed now.
        daemon.history().commit();
        return { ok: true, processed: daemon.progress().processed };
      },
    },
    'log-level': {
      readOnly: false,
      handle: (request): ControlReply => {
        const level = request.level;
        if (typeof level !== 'string' || !isLogLevel(level)) return { ok: false, error: `level: expected one of ${LOG_LEVELS.join(', ')}` };
        const previous = daemon.logger.level;
        daemon.logger.level = level;
        daemon.logger.info({ previous, level }, 'Log level changed');
        return { ok: true, previous, level };
      },
    },
    exit: {
      readOnly: false,
      handle: (): ControlReply => {
        // After the reply is on its way.
        setImmediate(() => daemon.requestExit());
        return { ok: true };
      },
    },
    subscribe: {
      readOnly: true,
      handle: (request, client) => {
        const filter: SubscriptionFilter = {};
        const subsystems = stringList(request, 'subsystems');
        const actions = stringList(request, 'actions');
        const tags = stringList(request, 'tags');
        if (subsystems) filter.subsystems = subsystems;
        if (actions) filter.actions = actions;
        if (tags) filter.tags = tags;
        if (request.results === true) filter.results = true;
        if (request.incidents === true) filter.incidents = true;
        const history = daemon.history();
        const after = cursor(history.db, request.cursor);
        // Commit, read the newest id and register in one turn: no event can slip between.
        const upTo = history.commit();
        daemon.subscribe(client.socket, filter, `${JSON.stringify({ ok: true, cursor: upTo })}\n`, after === undefined ? undefined : { afterId: after, upToId: upTo });
        return 'streaming';
      },
    },
    wait: {
      readOnly: true,
      handle: async (request): Promise<ControlReply> => {
        const path = request.path;
        if (typeof path !== 'string' || !/^\/(dev|sys|devices)\//.test(path)) return { ok: false, error: 'path: expected /dev/..., /sys/... or a devpath (/devices/...)' };
        const ms = timeout(request);
        const removed = request.removed === true;
        return (await daemon.wait({ path, removed }, ms))
          ? { ok: true }
          : { ok: false, error: `${path} was not ${removed ? 'removed' : 'present and processed'} within ${ms} ms` };
      },
    },
  };
}
