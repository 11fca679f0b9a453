// Fleets over a real Mosquitto: two boards (two daemons in one namespace, each with its own
// history and board name) forward storms to one broker and one collector; the broker is
// killed mid-storm and restarted, a board is SIGKILLed and restarted, the collector is
// restarted; afterwards the collected database holds every event of each board once, in
// order, in SQLite and in a real PostgreSQL (which is also stopped as in a crash mid-storm).
// Malformed payloads from a test client are dropped and counted.
import Database from 'better-sqlite3';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, canUseNamespaces, DaemonProcess, makeTempDir, Netns, waitFor } from '../helpers/netns.js';
import { MOSQUITTO, Mosquitto } from '../helpers/mosquitto.js';
import { POSTGRES_BIN, Postgres } from '../helpers/postgres.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

const LO = '/sys/class/net/lo/uevent';

/** Ids a query finds in a fleet database: a SQLite path, or a PostgreSQL server (its one parameter inlined). */
function ids(dbPath: string | Postgres, sql: string, ...params: unknown[]): number[] {
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

function startCollector(netns: Netns, url: string, dbPath: string | Postgres): { child: ChildProcess; log: () => string } {
  const child = spawn('ip', ['netns', 'exec', netns.name, process.execPath, CLI, 'collect', '--broker', url, '--db', typeof dbPath === 'string' ? dbPath : dbPath.url, '--client-id', 'test-collector'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (log += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (log += chunk));
  cleanups.push(() => child.kill('SIGKILL'));
  return { child, log: () => log };
}

async function stopped(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null) return;
  child.kill(signal);
  await new Promise((resolve) => child.once('exit', resolve));
}

// Each board in a directory of its own: its history, control socket and dev root.
function board(netns: Netns, dir: string, name: string, url: string): DaemonProcess {
  mkdirSync(join(dir, name), { recursive: true });
  return new DaemonProcess(netns, join(dir, name, 'history.db'), ['--no-coldplug', '--no-watch', '--no-links', '--forward', url, '--board', name]);
}

async function expectCollected(netns: Netns, fleetDb: string | Postgres, boards: { name: string; daemon: DaemonProcess }[]): Promise<void> {
  for (const b of boards) {
    // Everything the kernel sent is in the board's history first (settle commits it).
    expect((await b.daemon.cli(netns, 'settle', '--timeout', '60s')).code).toBe(0);
    const expected = () => ids(b.daemon.dbPath, 'SELECT id FROM events ORDER BY id');
    const collected = () => ids(fleetDb, 'SELECT id FROM fleet_events WHERE board = ? ORDER BY id', b.name);
    await waitFor(() => collected().length === expected().length && expected().length > 0, 120_000, `${b.name}'s events collected`).catch((error) => {
      console.log(b.name, 'board', expected().length, 'collected', collected().length);
      throw error;
    });
    expect(collected()).toEqual(expected());
  }
}

/** A namespace, a temp dir and a started broker, each removed after the test. */
async function brokerScope(prefix: string, persistence: boolean): Promise<{ netns: Netns; dir: { path: string }; broker: Mosquitto }> {
  const netns = new Netns(prefix);
  cleanups.push(() => netns.delete());
  const dir = makeTempDir(prefix);
  cleanups.push(() => dir.remove());
  const broker = new Mosquitto(netns, join(dir.path, 'broker'), { persistence });
  cleanups.push(() => broker.stop());
  await broker.start();
  return { netns, dir, broker };
}

describe.runIf(canUseNamespaces() && (MOSQUITTO !== undefined || process.env.CI === 'true'))('fleet forwarding over MQTT', () => {
  const stores = [
    { persistence: false, store: 'sqlite' },
    { persistence: true, store: 'sqlite' },
    ...(POSTGRES_BIN !== undefined || process.env.CI === 'true' ? [{ persistence: true, store: 'postgres' }] : []),
  ];
  it.each(stores)('two boards, broker killed mid-storm (persistence $persistence), a board and the collector restarted, into $store: every event collected once, in order', async ({ persistence, store }) => {
    const { netns, dir, broker } = await brokerScope('fleet', persistence);
    let fleetDb: string | Postgres = join(dir.path, 'fleet.db');
    // PostgreSQL commits (and fsyncs) each message: smaller storms keep the test's time in bounds.
    const storm = (n: number) => (store === 'postgres' ? n / 4 : n);
    let postgres: Postgres | undefined;
    if (store === 'postgres') {
      postgres = new Postgres();
      cleanups.push(() => postgres!.remove());
      postgres.start();
      fleetDb = postgres;
    }
    let collector = startCollector(netns, broker.url, fleetDb);
    let b1 = board(netns, dir.path, 'b1', broker.url);
    let b2 = board(netns, dir.path, 'b2', broker.url);
    cleanups.push(() => b1.kill(), () => b2.kill());
    await Promise.all([b1.waitForLog('hotplugd started'), b2.waitForLog('hotplugd started')]);
    await waitFor(() => b1.logs.some((l) => l.msg === 'Forwarding: connected to the broker') && b2.logs.some((l) => l.msg === 'Forwarding: connected to the broker'), 20_000, 'both boards connected');

    netns.writeUevents(LO, 'change', storm(2000));
    await broker.kill(); // mid-storm: what it acknowledged and had not delivered may be gone
    netns.writeUevents(LO, 'change', storm(2000));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await broker.start();
    netns.writeUevents(LO, 'change', storm(2000));
    if (postgres) {
      // The database crashes: the collector stores nothing, acknowledges nothing, says so once.
      postgres.stop('immediate');
      netns.writeUevents(LO, 'change', storm(1000));
      await waitFor(() => collector.log().includes('Collector: failed to store a message'), 20_000, 'the collector to notice');
      await new Promise((resolve) => setTimeout(resolve, 3000)); // retrying all the while
      postgres.start();
      await waitFor(() => collector.log().includes('Collector: storing again'), 60_000, 'the collector to store again');
      // One line per problem (the connection lost, the server starting up...), not one per message or retry.
      expect(collector.log().match(/Collector: failed to store a message/g)!.length).toBeLessThanOrEqual(4);
    }
    b2.kill(); // a board loses power...
    await new Promise((resolve) => b2.child.once('exit', resolve));
    netns.writeUevents(LO, 'change', storm(1000)); // ...b1 goes on
    b2 = board(netns, dir.path, 'b2', broker.url); // and comes back with its history
    cleanups.push(() => b2.kill());
    await b2.waitForLog('hotplugd started');
    await stopped(collector.child); // the collector restarts too
    netns.writeUevents(LO, 'change', storm(1000));
    collector = startCollector(netns, broker.url, fleetDb);

    await expectCollected(netns, fleetDb, [{ name: 'b1', daemon: b1 }, { name: 'b2', daemon: b2 }]).catch((error) => {
      console.log(collector.log().slice(-4000));
      throw error;
    });
    const status = await b1.cli(netns, 'status');
    expect(status.stdout).toMatch(/forwarding: connected, cursor at event \d+, 0 events waiting/);
    const boards = spawn('ip', ['netns', 'exec', netns.name, process.execPath, CLI, 'boards', '--db', typeof fleetDb === 'string' ? fleetDb : fleetDb.url, '--json']);
    let listed = '';
    boards.stdout.setEncoding('utf8').on('data', (chunk: string) => (listed += chunk));
    await new Promise((resolve) => boards.once('exit', resolve));
    const rows = listed.trim().split('\n').map((l) => JSON.parse(l) as { name: string; status: string; events: number });
    expect(rows.map((r) => r.name)).toEqual(['b1', 'b2']);
    expect(rows.every((r) => r.status === 'online')).toBe(true);
  }, 180_000);

  it('sends again what a broker without persistence acknowledged and lost while the collector was away', async () => {
    const { netns, dir, broker } = await brokerScope('fleetlost', false);
    const fleetDb = join(dir.path, 'fleet.db');
    let collector = startCollector(netns, broker.url, fleetDb);
    const b1 = board(netns, dir.path, 'b1', broker.url);
    cleanups.push(() => b1.kill());
    await b1.waitForLog('hotplugd started');
    netns.writeUevents(LO, 'change', 500);
    await expectCollected(netns, fleetDb, [{ name: 'b1', daemon: b1 }]);

    await stopped(collector.child); // away: the broker keeps the board's messages for its session...
    netns.writeUevents(LO, 'change', 1000);
    expect((await b1.cli(netns, 'settle', '--timeout', '60s')).code).toBe(0);
    let status = '';
    for (let tries = 0; tries < 100 && !/, 0 events waiting/.test(status); tries++) {
      status = (await b1.cli(netns, 'status')).stdout;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(status).toMatch(/, 0 events waiting/); // ...and acknowledged every one of them
    await broker.kill(); // ...then loses them all
    await broker.start();
    collector = startCollector(netns, broker.url, fleetDb);
    await expectCollected(netns, fleetDb, [{ name: 'b1', daemon: b1 }]);
    expect(b1.logs.some((l) => l.msg === 'Forwarding: the collector has less than the broker acknowledged; sending again from what it has')).toBe(true);
  }, 120_000);

  it('drops malformed and oversized payloads, counted and logged with the board, and goes on', async () => {
    const { netns, dir, broker } = await brokerScope('fleetbad', false);
    const fleetDb = join(dir.path, 'fleet.db');
    const collector = startCollector(netns, broker.url, fleetDb);
    await waitFor(() => collector.log().includes('Collecting'), 20_000, 'the collector to subscribe');
    const publish = `
const { connect } = require(${JSON.stringify(join(import.meta.dirname, '../../node_modules/mqtt'))});
const c = connect(process.argv[1]);
c.on('connect', async () => {
  const t = 'hotplugd/evil/events';
  for (const p of ['not json', '[1,2]', JSON.stringify({ type: 'event', board: 'other', id: 1, after: 0 }), JSON.stringify({ type: 'event', board: 'evil', id: -1, after: 0 }),
                   JSON.stringify({ type: 'bogus', board: 'evil', id: 1, after: 0 }), 'x'.repeat(300 * 1024),
                   JSON.stringify({ type: 'event', board: 'evil', id: 1, after: 0, action: 'add', subsystem: 'net', devpath: '/devices/virtual/net/<i>x', received_at: new Date().toISOString(), actions: [] })])
    await c.publishAsync(t, p, { qos: 1 });
  await c.endAsync();
});`;
    spawn('ip', ['netns', 'exec', netns.name, process.execPath, '-e', publish, broker.url]);
    await waitFor(() => ids(fleetDb, "SELECT id FROM fleet_events WHERE board = 'evil'").length === 1, 20_000, 'the one good payload stored').catch((error) => {
      console.log(collector.log());
      throw error;
    });
    expect(collector.log()).toMatch(/Collector: dropped a message from \\?"evil\\?"/);
    await stopped(collector.child);
    expect(collector.log()).toMatch(/"refused":6/);
  }, 60_000);
});
