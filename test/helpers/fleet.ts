// Fleet tests' pieces: boards (daemons in one namespace, each with its own history and board
// name), a collector process, a broker in its own scope, and what the fleet database holds.
// Everything started is registered for removal after the test.
import Database from 'better-sqlite3';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { CLI, DaemonProcess, makeTempDir, Netns, waitFor } from './netns.js';
import { Mosquitto } from './mosquitto.js';
import { Postgres } from './postgres.js';

export const LO = '/sys/class/net/lo/uevent';

/** Ids a query finds in a fleet database: a SQLite path, or a PostgreSQL server (its one parameter inlined). */
export function ids(dbPath: string | Postgres, sql: string, ...params: unknown[]): number[] {
  if (dbPath instanceof Postgres) {
    try {
      return dbPath.query(sql.replace('?', `'${String(params[0])}'`)).map(Number);
    } catch {
      return []; // not created yet, or the server is down
    }
  }
  try {
    const db = new Database(dbPath, { readonly: true });
    try {
      return (db.prepare(sql).all(...params) as { id: number }[]).map((r) => r.id);
    } finally {
      db.close();
    }
  } catch {
    return []; // not created yet
  }
}

export async function stopped(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null) return;
  child.kill(signal);
  await new Promise((resolve) => child.once('exit', resolve));
}

export class FleetScope {
  readonly cleanups: (() => void)[] = [];

  cleanUp = (): void => {
    for (const cleanup of this.cleanups.splice(0).reverse()) cleanup();
  };

  startCollector = (netns: Netns, url: string, dbPath: string | Postgres, clientId = 'test-collector', extra: string[] = []): { child: ChildProcess; log: () => string } => {
    const child = spawn('ip', ['netns', 'exec', netns.name, process.execPath, CLI, 'collect', '--broker', url, '--db', typeof dbPath === 'string' ? dbPath : dbPath.url, '--client-id', clientId, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (log += chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (log += chunk));
    this.cleanups.push(() => child.kill('SIGKILL'));
    return { child, log: () => log };
  };

  /** A board in a directory of its own: its history, control socket and dev root. */
  board = (netns: Netns, dir: string, name: string, url: string, extra: string[] = []): DaemonProcess => {
    mkdirSync(join(dir, name), { recursive: true });
    const daemon = new DaemonProcess(netns, join(dir, name, 'history.db'), ['--no-coldplug', '--no-watch', '--no-links', '--forward', url, '--board', name, ...extra]);
    this.cleanups.push(() => daemon.kill());
    return daemon;
  };

  /** Waits until the fleet database holds every event of each board's history, once and in order. */
  expectCollected = async (netns: Netns, fleetDb: string | Postgres, boards: { name: string; daemon: DaemonProcess }[], timeoutMs = 120_000): Promise<void> => {
    for (const b of boards) {
      // Everything the kernel sent is in the board's history first (settle commits it).
      expect((await b.daemon.cli(netns, 'settle', '--timeout', '60s')).code).toBe(0);
    }
    const deadline = Date.now() + timeoutMs;
    for (const b of boards) {
      const expected = () => ids(b.daemon.dbPath, 'SELECT id FROM events ORDER BY id');
      const collected = () => ids(fleetDb, 'SELECT id FROM fleet_events WHERE board = ? ORDER BY id', b.name);
      await waitFor(() => collected().length === expected().length && expected().length > 0, Math.max(1, deadline - Date.now()), `${b.name}'s events collected`).catch((error) => {
        console.log(b.name, 'board', expected().length, 'collected', collected().length);
        throw error;
      });
      expect(collected()).toEqual(expected());
    }
  };

  /** A namespace, a temp dir and a started broker (stock settings), each removed after the test. */
  brokerScope = async (prefix: string, persistence: boolean): Promise<{ netns: Netns; dir: { path: string }; broker: Mosquitto }> => {
    const netns = new Netns(prefix);
    this.cleanups.push(() => netns.delete());
    const dir = makeTempDir(prefix);
    this.cleanups.push(() => dir.remove());
    const broker = new Mosquitto(netns, join(dir.path, 'broker'), { persistence });
    this.cleanups.push(() => broker.stop());
    await broker.start();
    return { netns, dir, broker };
  };
}
