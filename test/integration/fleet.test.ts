// Fleets over a real Mosquitto: two boards (two daemons in one namespace, each with its own
// history and board name) forward storms to one broker and one collector; the broker is
// killed mid-storm and restarted, a board is SIGKILLed and restarted, the collector is
// restarted; afterwards the collected database holds every event of each board once, in
// order, in SQLite and in a real PostgreSQL (which is also stopped as in a crash mid-storm).
// Malformed payloads from a test client are dropped and counted.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, canUseNamespaces, waitFor } from '../helpers/netns.js';
import { MOSQUITTO } from '../helpers/mosquitto.js';
import { POSTGRES_BIN, Postgres } from '../helpers/postgres.js';
import { FleetScope, ids, LO, stopped } from '../helpers/fleet.js';

const scope = new FleetScope();
afterEach(() => scope.cleanUp());
const { board, startCollector, brokerScope, expectCollected } = scope;
const cleanups = scope.cleanups;

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
    await b2.waitForLog('hotplugd started');
    await stopped(collector.child); // the collector restarts too
    netns.writeUevents(LO, 'change', storm(1000));
    collector = startCollector(netns, broker.url, fleetDb);

    await expectCollected(netns, fleetDb, [{ name: 'b1', daemon: b1 }, { name: 'b2', daemon: b2 }]).catch((error) => {
      console.log(collector.log().slice(-4000));
      throw error;
    });
    const status = await b1.cli(netns, 'status');
    expect(status.stdout).toMatch(/forwarding: connected, cursor at event \d+, 0 events waiting for the collector/);
    const boards = spawn('ip', ['netns', 'exec', netns.name, process.execPath, CLI, 'boards', '--db', typeof fleetDb === 'string' ? fleetDb : fleetDb.url, '--json']);
    let listed = '';
    boards.stdout.setEncoding('utf8').on('data', (chunk: string) => (listed += chunk));
    await new Promise((resolve) => boards.once('exit', resolve));
    const rows = listed.trim().split('\n').map((l) => JSON.parse(l) as { name: string; status: string; events: number });
    expect(rows.map((r) => r.name)).toEqual(['b1', 'b2']);
    expect(rows.every((r) => r.status === 'online')).toBe(true);
  }, 180_000);

  it('counts nothing as forwarded until the collector has it: what a broker without persistence lost while the collector was away is sent again', async () => {
    const { netns, dir, broker } = await brokerScope('fleetlost', false);
    const fleetDb = join(dir.path, 'fleet.db');
    let collector = startCollector(netns, broker.url, fleetDb);
    const b1 = board(netns, dir.path, 'b1', broker.url);
    await b1.waitForLog('hotplugd started');
    netns.writeUevents(LO, 'change', 500);
    await expectCollected(netns, fleetDb, [{ name: 'b1', daemon: b1 }]);
    let status = '';
    for (let tries = 0; tries < 100 && !/, 0 events waiting for the collector/.test(status); tries++) {
      status = (await b1.cli(netns, 'status')).stdout;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(status).toMatch(/, 0 events waiting for the collector/); // the collector's word reached the board

    await stopped(collector.child); // away: the broker keeps what the board sends for its session...
    netns.writeUevents(LO, 'change', 1000);
    expect((await b1.cli(netns, 'settle', '--timeout', '60s')).code).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    // ...acknowledges it to the board, but the board waits for the collector's word.
    expect((await b1.cli(netns, 'status')).stdout).toMatch(/, 1000 events waiting for the collector/);
    await broker.kill(); // ...then loses it all
    await broker.start();
    collector = startCollector(netns, broker.url, fleetDb);
    await expectCollected(netns, fleetDb, [{ name: 'b1', daemon: b1 }]);
  }, 120_000);

  it('a collector stops at SIGTERM even when the broker hangs with its marks unacknowledged', async () => {
    const { netns, dir, broker } = await brokerScope('fleethang', false);
    const fleetDb = join(dir.path, 'fleet.db');
    const collector = startCollector(netns, broker.url, fleetDb);
    const b1 = board(netns, dir.path, 'b1', broker.url);
    await b1.waitForLog('Forwarding: connected to the broker');
    // Frozen in the middle of a storm's collection: the collector's acknowledgements to the
    // board (every 50 ms as it stores) wait for the broker's, which never come.
    const storm = netns.startUevents(LO, 'change');
    await waitFor(() => ids(fleetDb, 'SELECT count(*) AS id FROM fleet_events')[0]! > 500, 30_000, 'collection under way');
    broker.freeze(true);
    cleanups.push(() => broker.freeze(false));
    await storm.stop();
    await new Promise((resolve) => setTimeout(resolve, 500));
    const started = Date.now();
    collector.child.kill('SIGTERM');
    const exited = await Promise.race([new Promise((resolve) => collector.child.once('exit', () => resolve(true))), new Promise((resolve) => setTimeout(() => resolve(false), 15_000))]);
    expect(exited).toBe(true);
    expect(Date.now() - started).toBeLessThan(10_000);
  }, 60_000);

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
