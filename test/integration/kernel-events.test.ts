// The daemon against real kernel uevents, each test in its own network namespace.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { isLinkEvent } from '../../src/uevent/event.js';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CLI,
  DaemonProcess,
  Netns,
  canUseNamespaces,
  countEvents,
  makeTempDir,
  readHistory,
  readIncidents,
  waitFor,
} from '../helpers/netns.js';
import type { EventRecord, IncidentLine } from '../../src/history/records.js';
import { HotplugClient } from '../../src/client/client.js';

const NET = '/devices/virtual/net';
const FORGE = join(import.meta.dirname, '..', 'helpers', 'forge.cjs');
const ONE_QUEUE = ['numtxqueues', '1', 'numrxqueues', '1'];

const cleanups: (() => void)[] = [];
afterEach(() => {
  // Runs even when the test failed: processes first, then namespaces and files.
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

async function startDaemon(prefix: string, args: string[] = []) {
  const netns = new Netns(prefix);
  cleanups.push(() => netns.delete());
  const dir = makeTempDir(prefix);
  cleanups.push(() => dir.remove());
  const daemon = new DaemonProcess(netns, join(dir.path, 'history.db'), args);
  cleanups.push(() => daemon.kill());
  await daemon.waitForLog('hotplugd started');
  return { netns, daemon, dir: dir.path };
}

/** A temp dir removed after the test. */
function makeTempDirFor(prefix: string): string {
  const dir = makeTempDir(prefix);
  cleanups.push(() => dir.remove());
  return dir.path;
}

function stoppedCounters(daemon: DaemonProcess): Record<string, number> {
  const line = daemon.log('hotplugd stopped');
  if (!line) throw new Error('the daemon did not log its final counters');
  return line.counters as Record<string, number>;
}

const kernelNetEvents = (records: EventRecord[]) =>
  records.filter((r) => r.source === 'kernel' && r.devpath.startsWith(`${NET}/`) && !r.devpath.startsWith(`${NET}/lo`));

describe.skipIf(!canUseNamespaces())('daemon with real kernel uevents', () => {
  it('records the exact sequence of a veth pair renamed and deleted, and a bridge', async () => {
    const { netns, daemon } = await startDaemon('seq');
    netns.ip('link', 'add', 'v0', ...ONE_QUEUE, 'type', 'veth', 'peer', 'name', 'v1', ...ONE_QUEUE);
    netns.ip('link', 'set', 'v1', 'name', 'v1x');
    netns.ip('link', 'del', 'v0');
    netns.ip('link', 'add', 'br0', 'type', 'bridge');
    netns.ip('link', 'del', 'br0');
    await waitFor(() => countEvents(daemon.dbPath, "devpath = ? AND action = 'remove'", `${NET}/br0`) === 1, 20_000, 'br0 removal');
    expect(await daemon.stop()).toBe(0);

    // Read it the way a user does: `hotplugd history --json`.
    const output = execFileSync(process.execPath, [CLI, 'history', '--db', daemon.dbPath, '--json'], { encoding: 'utf8' });
    const records = output.trim().split('\n').map((line) => JSON.parse(line) as EventRecord);
    const sequence = kernelNetEvents(records).map((r) => `${r.action} ${r.devpath.slice(NET.length + 1)} ${r.subsystem}`);
    expect(sequence).toEqual([
      'add v1 net', 'add v1/queues/rx-0 queues', 'add v1/queues/tx-0 queues',
      'add v0 net', 'add v0/queues/rx-0 queues', 'add v0/queues/tx-0 queues',
      'move v1x net',
      'remove v0/queues/rx-0 queues', 'remove v0/queues/tx-0 queues', 'remove v0 net',
      'remove v1x/queues/rx-0 queues', 'remove v1x/queues/tx-0 queues', 'remove v1x net',
      'add br0 net', 'add br0/queues/rx-0 queues', 'add br0/queues/tx-0 queues',
      'remove br0/queues/rx-0 queues', 'remove br0/queues/tx-0 queues', 'remove br0 net',
    ]);
    const move = records.find((r) => r.action === 'move')!;
    expect(move.properties).toMatchObject({ ACTION: 'move', DEVPATH: `${NET}/v1x`, DEVPATH_OLD: `${NET}/v1`, INTERFACE: 'v1x' });
    const kernel = kernelNetEvents(records);
    for (let i = 1; i < kernel.length; i++) expect(kernel[i]!.seqnum!).toBeGreaterThan(kernel[i - 1]!.seqnum!);
    for (const record of kernel) {
      expect(record.received_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(record.properties.SEQNUM).toBe(String(record.seqnum));
    }
    // Coldplug recorded the namespace's loopback once, before any kernel event (and the
    // start-up link snapshot its carrier: a link event, not a uevent).
    const lo = records.filter((r) => r.devpath === `${NET}/lo` && !isLinkEvent(r));
    expect(lo.map((r) => [r.action, r.source])).toEqual([['add', 'coldplug']]);
    expect(lo[0]!.properties).toMatchObject({ ACTION: 'add', SUBSYSTEM: 'net', INTERFACE: 'lo' });
    expect(records.indexOf(lo[0]!)).toBeLessThan(records.indexOf(kernel[0]!));
  });

  it('drops and counts a datagram forged by a user-space sender', async () => {
    const { netns, daemon } = await startDaemon('forge');
    netns.run(process.execPath, FORGE, `${NET}/forged0`);
    // A real event after the forged one proves the daemon read past it.
    netns.ip('link', 'add', 'after0', 'type', 'bridge');
    await waitFor(() => countEvents(daemon.dbPath, 'devpath = ?', `${NET}/after0`) === 1, 20_000, 'the real event');
    expect(await daemon.stop()).toBe(0);

    expect(stoppedCounters(daemon).forged).toBe(1);
    expect(readHistory(daemon.dbPath).filter((r) => r.devpath.includes('forged0'))).toEqual([]);
    const warning = daemon.logs.find((l) => l.reason === 'forged');
    expect(warning?.msg).toMatch(/^Dropped a datagram: sender port \d+ is not the kernel$/);
  });

  it('records all of 20,000 synthetic change events on lo, none lost', async () => {
    const { netns, daemon } = await startDaemon('storm', ['--no-coldplug']);
    netns.writeUevents('/sys/class/net/lo/uevent', 'change', 20_000);
    const lo = () => countEvents(daemon.dbPath, "devpath = ? AND action = 'change' AND source = 'kernel'", `${NET}/lo`);
    await waitFor(() => lo() >= 20_000, 60_000, '20,000 recorded events');
    expect(await daemon.stop()).toBe(0);

    expect(lo()).toBe(20_000);
    const counters = stoppedCounters(daemon);
    expect(counters.enobufs).toBe(0);
    expect(counters.recordFailures).toBe(0);
    const distinct = countEvents(daemon.dbPath, "seqnum IN (SELECT DISTINCT seqnum FROM events WHERE devpath = ? AND action = 'change')", `${NET}/lo`);
    expect(distinct).toBe(20_000);
  });

  it('with a tiny queue, pauses and resumes reading without losing events', async () => {
    // 16 queued events at most: the socket is paused and resumed many times during the storm.
    const { netns, daemon } = await startDaemon('pause', ['--no-coldplug', '--queue-size', '16']);
    netns.writeUevents('/sys/class/net/lo/uevent', 'change', 5000);
    const lo = () => countEvents(daemon.dbPath, "devpath = ? AND action = 'change'", `${NET}/lo`);
    await waitFor(() => lo() >= 5000, 60_000, '5,000 recorded events');
    expect(await daemon.stop()).toBe(0);
    expect(lo()).toBe(5000);
    const counters = stoppedCounters(daemon);
    expect(counters.enobufs).toBe(0);
    // Reads take only what the queue has room for, so it fills (16) and drains (8) again and again.
    expect(counters.readPauses).toBeGreaterThan(100);
  });

  it('after lost events (ENOBUFS) resyncs from sysfs and records the gap', async () => {
    const { netns, daemon } = await startDaemon('resync', ['--receive-buffer', '64K']);
    netns.ip('link', 'add', 'old0', 'type', 'bridge');
    await waitFor(() => countEvents(daemon.dbPath, 'devpath = ?', `${NET}/old0`) === 1, 20_000, 'old0 recorded');

    // Stop the daemon so the kernel buffer overflows, change devices meanwhile, go on.
    daemon.signal('SIGSTOP');
    netns.writeUevents('/sys/class/net/lo/uevent', 'change', 3000);
    netns.ip('link', 'add', 'new0', ...ONE_QUEUE, 'type', 'veth', 'peer', 'name', 'new1', ...ONE_QUEUE);
    netns.ip('link', 'del', 'old0');
    daemon.signal('SIGCONT');

    await waitFor(() => countEvents(daemon.dbPath, "source = 'resync'") >= 5, 20_000, 'resync events');
    // The gap in SEQNUMs shows with the first event after the lost ones.
    netns.ip('link', 'add', 'after0', 'type', 'bridge');
    await waitFor(() => countEvents(daemon.dbPath, 'devpath = ?', `${NET}/after0`) === 1, 20_000, 'after0 recorded');
    expect(await daemon.stop()).toBe(0);

    // The daemon lived through the overflow (libuv stops polling on POLLERR) and stopped cleanly.
    expect(stoppedCounters(daemon).enobufs).toBeGreaterThan(0);
    const resync = readHistory(daemon.dbPath).filter((r) => r.source === 'resync');
    // Net queues have no uevent file, so a rescan finds new interfaces but not their queues;
    // the old bridge's queues were known from its kernel events and are removed with it.
    expect(resync.map((r) => `${r.action} ${r.devpath.slice(NET.length + 1)}`)).toEqual([
      'remove old0/queues/rx-0', 'remove old0/queues/tx-0', 'remove old0', 'add new0', 'add new1',
    ]);
    expect(resync.find((r) => r.devpath === `${NET}/new0`)!.properties).toMatchObject({ ACTION: 'add', SUBSYSTEM: 'net', INTERFACE: 'new0' });
    const incidents = readIncidents(daemon.dbPath);
    expect(incidents.find((i) => i.kind === 'overflow')?.detail).toMatchObject({ resyncAdded: 2, resyncRemoved: 3 });
    const gaps = incidents.filter((i) => i.kind === 'seqnum-gap' && i.detail.duringOverflow === true);
    expect(gaps).toHaveLength(1);
    // At least the lost change events on lo, the veth pair's and old0's removal events.
    expect(gaps[0]!.detail.missed).toBeGreaterThan(3000 - 200);
    expect(daemon.logs.some((l) => /ENOBUFS/.test(l.msg) && l.level === 40)).toBe(true);
  });

  it('tells a subscriber of processed events about the overflow as it happens', async () => {
    const { netns, daemon } = await startDaemon('incident', ['--receive-buffer', '64K']);
    const client = new HotplugClient({ controlPath: daemon.controlPath, dbPath: daemon.dbPath });
    const incidents: IncidentLine['incident'][] = [];
    const abort = new AbortController();
    const consumer = (async () => {
      for await (const record of client.subscribe({ subsystems: ['net'], signal: abort.signal, onIncident: (incident) => incidents.push(incident) })) void record;
    })();
    cleanups.push(() => abort.abort());
    let subscribers = 0;
    const watchStatus = setInterval(() => void client.status().then((s) => (subscribers = s.counters.subscribers ?? 0), () => undefined), 50);
    cleanups.push(() => clearInterval(watchStatus));
    await waitFor(() => subscribers === 1, 10_000, 'the subscription');
    clearInterval(watchStatus);

    daemon.signal('SIGSTOP');
    netns.writeUevents('/sys/class/net/lo/uevent', 'change', 3000);
    netns.ip('link', 'add', 'late0', 'type', 'bridge');
    daemon.signal('SIGCONT');
    await waitFor(() => incidents.some((i) => i.kind === 'overflow'), 20_000, 'the overflow incident');
    abort.abort();
    await consumer;

    const overflow = incidents.find((i) => i.kind === 'overflow')!;
    expect(overflow.detail).toMatchObject({ resyncAdded: expect.any(Number), enobufsReports: expect.any(Number) });
    // What the subscriber heard is what the history holds.
    expect(readIncidents(daemon.dbPath).map((i) => i.kind)).toContain('overflow');
    expect(await daemon.stop()).toBe(0);
  });

  it('after an overflow with device events buffered before it, acts once on each change (no resync double)', async () => {
    const rules = join(makeTempDirFor('double'), 'rules.d');
    mkdirSync(rules);
    writeFileSync(join(rules, '10-veth.yaml'), `rules:
  - name: veth-program
    match: { subsystem: net, kernel: "dbl*", action: [add, remove] }
    run: [["/bin/true"]]
`);
    const { netns, daemon } = await startDaemon('double', ['--receive-buffer', '64K', '--rules-dir', rules]);
    // The device events are buffered first, the storm after them overflows the buffer:
    // the kernel reports ENOBUFS before it hands over what it had kept.
    daemon.signal('SIGSTOP');
    for (let i = 0; i < 3; i++) netns.ip('link', 'add', `dbl${i}a`, ...ONE_QUEUE, 'type', 'veth', 'peer', 'name', `dbl${i}b`, ...ONE_QUEUE);
    netns.ip('link', 'del', 'dbl0a');
    netns.writeUevents('/sys/class/net/lo/uevent', 'change', 3000);
    daemon.signal('SIGCONT');
    await waitFor(() => countEvents(daemon.dbPath, "devpath = ? AND action = 'change'", `${NET}/lo`) > 0, 20_000, 'the storm read');
    const settled = await daemon.cli(undefined, 'settle', '--timeout', '30');
    expect(settled.code).toBe(0);
    expect(await daemon.stop()).toBe(0);
    expect(stoppedCounters(daemon).enobufs).toBeGreaterThan(0);

    const history = readHistory(daemon.dbPath).filter((r) => /\/dbl\d[ab]$/.test(r.devpath));
    // Each interface that is still there was added once, by the kernel or by the resync, never by both.
    for (const name of ['dbl1a', 'dbl1b', 'dbl2a', 'dbl2b']) {
      const adds = history.filter((r) => r.devpath === `${NET}/${name}` && r.action === 'add');
      expect(adds.map((r) => r.source), name).toHaveLength(1);
    }
    // The pair deleted while the daemon was stopped: added and removed once at most each.
    for (const name of ['dbl0a', 'dbl0b']) {
      for (const action of ['add', 'remove']) {
        expect(history.filter((r) => r.devpath === `${NET}/${name}` && r.action === action).length, `${action} ${name}`).toBeLessThanOrEqual(1);
      }
    }
    // One program per recorded add or remove: nothing ran twice.
    const db = new Database(daemon.dbPath, { readonly: true });
    try {
      const runs = db.prepare(`SELECT e.devpath, e.action, count(*) AS n FROM actions a JOIN events e ON e.id = a.event_id
        WHERE a.kind = 'program' AND e.devpath LIKE '%/dbl%' GROUP BY e.devpath, e.action`).all() as { devpath: string; action: string; n: number }[];
      expect(runs.filter((r) => r.n !== 1)).toEqual([]);
      expect(runs.length).toBe(history.filter((r) => r.action === 'add' || r.action === 'remove').length);
    } finally {
      db.close();
    }
  });
});
