// Outages against a stock Mosquitto (its defaults: max_queued_messages 1,000, no persistence),
// as a fleet operator runs it: the broker dies mid-storm, a board is SIGKILLed while the broker
// is down and comes back, then the broker comes back; several boards record through an outage;
// the collector is SIGKILLed while boards send again; a board and the collector die at once.
// Every event is collected exactly once,
// in order, within 60 s of the broker's return.
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { canUseNamespaces } from '../helpers/netns.js';
import { MOSQUITTO } from '../helpers/mosquitto.js';
import { FleetScope, ids, LO, stopped } from '../helpers/fleet.js';

const scope = new FleetScope();
afterEach(() => scope.cleanUp());
const { board, startCollector, brokerScope, expectCollected } = scope;

describe.runIf(canUseNamespaces() && (MOSQUITTO !== undefined || process.env.CI === 'true'))('fleet outages with a stock broker', () => {
  it('a 12,000-event storm: broker killed mid-storm, the board SIGKILLed while it is down and restarted, the broker back: all collected once within 60 s', async () => {
    const { netns, dir, broker } = await brokerScope('outage', false);
    const fleetDb = join(dir.path, 'fleet.db');
    const collector = startCollector(netns, broker.url, fleetDb);
    let b1 = board(netns, dir.path, 'b1', broker.url);
    await b1.waitForLog('Forwarding: connected to the broker');

    const storm = netns.startUevents(LO, 'change');
    await new Promise((resolve) => setTimeout(resolve, 400));
    await broker.kill(); // mid-storm
    let written = await storm.stop();
    netns.writeUevents(LO, 'change', 12_000 - written);
    written = 12_000;
    expect((await b1.cli(netns, 'settle', '--timeout', '60s')).code).toBe(0);
    b1.kill(); // the board loses power while the broker is down...
    await new Promise((resolve) => b1.child.once('exit', resolve));
    b1 = board(netns, dir.path, 'b1', broker.url); // ...and comes back with its history
    await b1.waitForLog('hotplugd started');
    await broker.start();
    const back = Date.now();
    await expectCollected(netns, fleetDb, [{ name: 'b1', daemon: b1 }], 60_000).catch((error) => {
      console.log(collector.log().slice(-3000));
      throw error;
    });
    console.log(`outage: 12,000 events collected ${Date.now() - back} ms after the broker's return`);
    expect(ids(b1.dbPath, 'SELECT id FROM events')).toHaveLength(written);
  }, 180_000);

  it('three boards recording 10,000 events each through an outage, the collector (two connections: messages stored out of order) SIGKILLed while they send again: all 30,000 collected once within 60 s', async () => {
    const { netns, dir, broker } = await brokerScope('outage3', false);
    const fleetDb = join(dir.path, 'fleet.db');
    const twoConnections = ['--connections', '2'];
    let collector = startCollector(netns, broker.url, fleetDb, 'test-collector', twoConnections);
    const boards = ['b1', 'b2', 'b3'].map((name) => ({ name, daemon: board(netns, dir.path, name, broker.url) }));
    for (const b of boards) await b.daemon.waitForLog('Forwarding: connected to the broker');
    await broker.kill();
    // In one namespace every daemon hears every event of lo: 10,000 each.
    netns.writeUevents(LO, 'change', 10_000);
    for (const b of boards) expect((await b.daemon.cli(netns, 'settle', '--timeout', '60s')).code).toBe(0);
    await broker.start();
    const back = Date.now();
    // The boards send again; the collector dies in the middle of it and comes back.
    const some = () => ids(fleetDb, 'SELECT count(*) AS id FROM fleet_events')[0] ?? 0;
    for (let i = 0; i < 200 && some() < 3000; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(some()).toBeGreaterThan(0);
    expect(some()).toBeLessThan(30_000);
    await stopped(collector.child, 'SIGKILL');
    collector = startCollector(netns, broker.url, fleetDb, 'test-collector', twoConnections);
    await expectCollected(netns, fleetDb, boards, 60_000 - (Date.now() - back)).catch((error) => {
      console.log(collector.log().slice(-3000));
      throw error;
    });
    console.log(`outage: 30,000 events of three boards collected ${Date.now() - back} ms after the broker's return`);
    expect(ids(fleetDb, 'SELECT count(*) AS id FROM fleet_conflicts')).toEqual([0]);
    // Both connections took messages (a shared group of the client id).
    expect(collector.log()).toMatch(/"connections":2/);
  }, 180_000);
  it('a board and the collector SIGKILLed at once while records are in flight, both restarted: every event collected once', async () => {
    const { netns, dir, broker } = await brokerScope('outagekk', false);
    const fleetDb = join(dir.path, 'fleet.db');
    let collector = startCollector(netns, broker.url, fleetDb);
    let b1 = board(netns, dir.path, 'b1', broker.url);
    await b1.waitForLog('Forwarding: connected to the broker');
    const storm = netns.startUevents(LO, 'change');
    for (let i = 0; i < 200 && (ids(fleetDb, 'SELECT count(*) AS id FROM fleet_events')[0] ?? 0) < 1000; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    await storm.stop(); // (the board's history has the storm up to its death; the rest is not heard)
    await Promise.all([stopped(b1.child, 'SIGKILL'), stopped(collector.child, 'SIGKILL')]);
    expect(ids(fleetDb, 'SELECT count(*) AS id FROM fleet_events')[0]).toBeGreaterThan(0);
    b1 = board(netns, dir.path, 'b1', broker.url);
    collector = startCollector(netns, broker.url, fleetDb);
    await b1.waitForLog('hotplugd started');
    await expectCollected(netns, fleetDb, [{ name: 'b1', daemon: b1 }], 60_000).catch(async (error) => {
      console.log(collector.log().slice(-3000), (await b1.cli(netns, 'status')).stdout);
      throw error;
    });
    const db = new Database(fleetDb, { readonly: true });
    const conflicts = db.prepare('SELECT stream, id, stored, received FROM fleet_conflicts').all();
    db.close();
    expect(conflicts).toEqual([]);
  }, 120_000);
});
