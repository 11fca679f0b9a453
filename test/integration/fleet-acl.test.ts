// Boards that cannot speak for each other: `hotplugd broker-setup` makes the CA, certificates
// and ACL; a real Mosquitto runs them. A board's certificate forwards its own history, but
// cannot publish records as another board, cannot write a mark (its own or another's) and
// cannot read another board's mark; a forged record never reaches the fleet database.
import { execFile, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, canUseNamespaces, DaemonProcess, makeTempDir, Netns, waitFor } from '../helpers/netns.js';
import { MOSQUITTO, Mosquitto } from '../helpers/mosquitto.js';
import { ids, LO } from '../helpers/fleet.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

interface Heard {
  connected: boolean;
  error?: string;
  received: { topic: string; payload: string; retain: boolean }[];
}

// An MQTT client in the namespace with a given identity: publishes, subscribes, and says what it heard.
const CLIENT = `
const { connect } = require(process.argv[1]);
const fs = require('fs');
const o = JSON.parse(process.argv[2]);
const tls = o.cert ? { ca: fs.readFileSync(o.ca), cert: fs.readFileSync(o.cert), key: fs.readFileSync(o.key) } : { ca: fs.readFileSync(o.ca) };
const c = connect(o.url, { ...tls, clientId: o.clientId, reconnectPeriod: 0, connectTimeout: 5000, rejectUnauthorized: true });
const out = { connected: false, received: [] };
const done = () => { process.stdout.write(JSON.stringify(out)); process.exit(0); };
c.on('error', (e) => { out.error = e.message; });
c.on('close', () => { if (!out.connected) done(); });
c.on('message', (topic, payload, packet) => out.received.push({ topic, payload: payload.toString(), retain: packet.retain }));
c.on('connect', async () => {
  out.connected = true;
  if (o.subscribe.length) await c.subscribeAsync(o.subscribe, { qos: 1 });
  for (const p of o.publish) await c.publishAsync(p.topic, p.payload, { qos: 1, retain: !!p.retain }).catch((e) => { out.error = e.message; });
  setTimeout(() => c.end(true, done), o.waitMs);
});`;

describe.runIf(canUseNamespaces() && (MOSQUITTO !== undefined || process.env.CI === 'true'))('a broker set up by hotplugd broker-setup', () => {
  it('lets each board speak only for itself, and only collectors write marks', async () => {
    const netns = new Netns('fleetacl');
    cleanups.push(() => netns.delete());
    const dir = makeTempDir('fleetacl');
    cleanups.push(() => dir.remove());
    const pki = join(dir.path, 'pki');
    const port = 18830 + Math.floor(Math.random() * 1000);
    writeFileSync(join(dir.path, 'boards.txt'), '# the fleet\nb1\nb2\n');
    const run = promisify(execFile);
    await run(process.execPath, [CLI, 'broker-setup', '--boards', join(dir.path, 'boards.txt'), '--collector', 'c1', '--host', '127.0.0.1', '--port', String(port), '--out', pki]);
    // The generated configuration as it is (Mosquitto's defaults otherwise), but in the test's folder.
    const conf = readFileSync(join(pki, 'mosquitto.conf'), 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    const broker = new Mosquitto(netns, join(dir.path, 'broker'), { persistence: false, port, extra: conf });
    cleanups.push(() => broker.stop());
    await broker.start();
    const url = `mqtts://127.0.0.1:${port}`;
    const as = (name: string, kind = 'boards') => ({ ca: join(pki, 'ca.crt'), cert: join(pki, kind, `${name}.crt`), key: join(pki, kind, `${name}.key`) });

    const fleetDb = join(dir.path, 'fleet.db');
    const c1 = as('c1', 'collectors');
    const collector = spawn('ip', ['netns', 'exec', netns.name, process.execPath, CLI, 'collect', '--broker', url, '--db', fleetDb, '--client-id', 'c1', '--ca', c1.ca, '--cert', c1.cert, '--key', c1.key], { stdio: 'ignore' });
    cleanups.push(() => collector.kill('SIGKILL'));
    const b1 = new DaemonProcess(netns, join(dir.path, 'b1.db'), ['--no-coldplug', '--no-watch', '--no-links', '--forward', url, '--board', 'b1',
      '--forward-ca', as('b1').ca, '--forward-cert', as('b1').cert, '--forward-key', as('b1').key]);
    cleanups.push(() => b1.kill());
    await b1.waitForLog('Forwarding: connected to the broker');
    netns.writeUevents(LO, 'change', 50);
    const b1Events = () => ids(fleetDb, "SELECT id FROM fleet_events WHERE board = 'b1'");
    await waitFor(() => b1Events().length === 50, 30_000, "b1's own events collected");

    const client = async (identity: { ca: string; cert?: string; key?: string }, clientId: string, subscribe: string[], publish: { topic: string; payload: string; retain?: boolean }[] = []): Promise<Heard> => {
      const { stdout } = await run('ip', ['netns', 'exec', netns.name, process.execPath, '-e', CLIENT, join(import.meta.dirname, '../../node_modules/mqtt'),
        JSON.stringify({ url, ...identity, clientId, subscribe, publish, waitMs: 1500 })]);
      return JSON.parse(stdout) as Heard;
    };
    // b2's certificate, speaking for b1: a record and a mark far ahead.
    const forged = { type: 'batch', board: 'b1', records: [{ type: 'event', board: 'b1', id: 51, after: 50, action: 'add', subsystem: 'usb', devpath: '/devices/forged', received_at: new Date().toISOString(), actions: [] }] };
    const mark = JSON.stringify({ event_id: 1_000_000, action_id: 0, incident_id: 0, fresh: true });
    const b2 = await client(as('b2'), 'hotplugd-b2', ['hotplugd/b1/collected', 'hotplugd/b1/ack', 'hotplugd/+/events'], [
      { topic: 'hotplugd/b1/events', payload: JSON.stringify(forged) },
      { topic: 'hotplugd/b1/collected', payload: mark, retain: true },
      { topic: 'hotplugd/b2/collected', payload: mark, retain: true }, // not even its own
    ]);
    expect(b2.connected).toBe(true);
    expect(b2.received).toEqual([]); // b1's mark and every board's records: not for b2
    // b1 itself reads its mark: the collector's, not the forged one.
    const own = await client(as('b1'), 'b1-reader', ['hotplugd/b1/collected']);
    expect(own.received.map((m) => JSON.parse(m.payload) as { event_id: number })).toEqual([expect.objectContaining({ event_id: 50 })]);
    const marks = await client(c1, 'c1-reader', ['hotplugd/+/collected']);
    expect(marks.received.map((m) => m.topic)).toEqual(['hotplugd/b1/collected']); // no mark written for b2
    // Nothing forged reached the fleet database; no client without a certificate gets in.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const db = new Database(fleetDb, { readonly: true });
    expect(db.prepare("SELECT count(*) AS n FROM fleet_events WHERE devpath = '/devices/forged' OR board = 'b2'").get()).toEqual({ n: 0 });
    db.close();
    expect(b1Events()).toHaveLength(50);
    const anonymous = await client({ ca: as('b1').ca }, 'nobody', ['hotplugd/#']);
    expect(anonymous.connected).toBe(false);
  }, 90_000);

  it('refuses names that cannot be a certificate\'s, a board listed as a collector, and a missing option, clearly', async () => {
    const dir = makeTempDir('aclbad');
    cleanups.push(() => dir.remove());
    const run = (args: string[]) => promisify(execFile)(process.execPath, [CLI, 'broker-setup', ...args]).then(() => ({ code: 0, stderr: '' }), (e: { code: number; stderr: string }) => e);
    writeFileSync(join(dir.path, 'bad.txt'), 'b1\nb 2\n');
    writeFileSync(join(dir.path, 'both.txt'), 'b1\nc1\n');
    expect(await run(['--boards', join(dir.path, 'bad.txt'), '--collector', 'c1', '--host', 'h', '--out', join(dir.path, 'o')])).toMatchObject({ code: 2, stderr: expect.stringContaining('"b 2" cannot be a certificate\'s name') });
    expect(await run(['--boards', join(dir.path, 'both.txt'), '--collector', 'c1', '--host', 'h', '--out', join(dir.path, 'o')])).toMatchObject({ code: 2, stderr: expect.stringContaining('"c1" is both a board and a collector') });
    expect(await run(['--boards', join(dir.path, 'both.txt'), '--host', 'h', '--out', join(dir.path, 'o')])).toMatchObject({ code: 2, stderr: expect.stringContaining('no collectors') });
    expect(await run(['--collector', 'c1', '--host', 'h', '--out', join(dir.path, 'o')])).toMatchObject({ code: 2, stderr: expect.stringContaining('--boards is required') });
  });
});
