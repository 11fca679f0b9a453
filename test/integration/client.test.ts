// The typed Node client against a real daemon in a network namespace: status, settle,
// waitFor, history, and a subscription that goes on across a daemon restart with no gap and
// no duplicate (the history ids it yields are exactly the history's, in order).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HotplugClient, type ProcessedRecord } from '../../src/index.js';
import { canUseNamespaces, countEvents, DaemonProcess, startRuleDaemon, waitFor } from '../helpers/netns.js';
import { readHistory } from '../helpers/netns.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

const LO = '/sys/class/net/lo/uevent';
const RULES = `
rules:
  - name: tag-lo
    match: { subsystem: net, kernel: lo }
    set: { tags: [loopback] }
`;

describe.runIf(canUseNamespaces())('the typed Node client', () => {
  it('subscribes across a daemon restart: every recorded event once, in order', async () => {
    const { netns, daemon: first, dir } = await startRuleDaemon('client', cleanups, RULES);
    const client = new HotplugClient({ controlPath: first.controlPath, dbPath: first.dbPath });
    expect((await client.status()).pid).toBeGreaterThan(0);

    const seen: ProcessedRecord[] = [];
    const abort = new AbortController();
    let open: () => void = () => {};
    const gate = new Promise<void>((resolve) => (open = resolve));
    const consumer = (async () => {
      for await (const record of client.subscribe({ subsystems: ['net'], tags: ['loopback'], cursor: 0, signal: abort.signal, retryMs: 100 })) {
        seen.push(record);
        if (seen.length === 50) await gate; // a reader that stops until the daemon is back
      }
    })();

    netns.writeUevents(LO, 'change', 3000); // more than the client holds and the socket buffers
    await client.settle();
    await first.stop(); // the daemon goes away mid-stream...
    netns.writeUevents(LO, 'change', 50); // (the kernel's events meanwhile reach nobody)
    const second = new DaemonProcess(netns, first.dbPath, ['--no-coldplug', '--no-watch', '--rules-dir', `${dir}/rules.d`]);
    cleanups.push(() => second.kill());
    await second.waitForLog('hotplugd started'); // ...and comes back with the same history
    open();
    netns.writeUevents(LO, 'change', 300);
    await client.settle();
    const recorded = () => countEvents(first.dbPath, "subsystem = 'net'");
    await waitFor(() => seen.length >= recorded() && recorded() >= 3300, 60_000, 'the subscriber to catch up');
    abort.abort();
    await consumer;

    const ids = readHistory(first.dbPath).filter((e) => e.subsystem === 'net').map((e) => e.id);
    expect(seen.map((r) => r.id)).toEqual(ids);
    expect(seen.length).toBe(3300);
    expect(seen.every((r) => r.tags.includes('loopback') && r.devpath === '/devices/virtual/net/lo')).toBe(true);
  }, 90_000);

  it('queries the history, waits for devices and refuses what the daemon refuses', async () => {
    const { netns, daemon } = await startRuleDaemon('clientq', cleanups, RULES);
    const client = new HotplugClient({ controlPath: daemon.controlPath, dbPath: daemon.dbPath });
    netns.writeUevents(LO, 'change', 5);
    await client.waitFor('/sys/class/net/lo');
    await client.settle({ timeoutMs: 10_000 });
    const all = [...client.history({ subsystems: ['n*'], actions: ['change'] })];
    expect(all).toHaveLength(5);
    expect(all[0]!.rules).toEqual([expect.stringContaining('tag-lo') as string]);
    expect([...client.history({ device: 'lo', limit: 2 })].map((r) => r.id)).toEqual(all.slice(-2).map((r) => r.id));
    expect([...client.history({ since: new Date(Date.now() + 60_000) })]).toEqual([]);
    await expect(client.waitFor('/sys/class/net/nosuch', { timeoutMs: 200 })).rejects.toThrow(/was not present and processed within 200 ms/);
    const refused = client.subscribe({ cursor: 'not a cursor' });
    await expect(refused.next()).rejects.toThrow(/refused the subscription: cursor: expected a history id/);
    const away = new HotplugClient({ controlPath: `${daemon.controlPath}.missing` });
    await expect(away.status()).rejects.toThrow(/is hotplugd running\?/);
  }, 60_000);

  it('runs examples/watch-devices.mjs as shipped: history first, then live, until SIGTERM', async () => {
    const { netns, daemon } = await startRuleDaemon('clientex', cleanups, RULES);
    netns.writeUevents(LO, 'change', 3);
    const example = spawn(process.execPath, [join(import.meta.dirname, '../../examples/watch-devices.mjs'), 'net'], {
      env: { ...process.env, HOTPLUGD_CONTROL: daemon.controlPath, HOTPLUGD_DB: daemon.dbPath },
    });
    cleanups.push(() => example.kill('SIGKILL'));
    let out = '';
    example.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    example.stderr.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    await waitFor(() => (out.match(/ change net "\/devices\/virtual\/net\/lo"/g) ?? []).length === 3, 20_000, 'the 3 recorded events');
    netns.writeUevents(LO, 'change', 2);
    await waitFor(() => (out.match(/ change net /g) ?? []).length === 5, 20_000, 'the 2 live ones');
    expect(out).toMatch(/^hotplugd \d+: 1 rules, \d+ events recorded\n/);
    example.kill('SIGTERM');
    expect(await new Promise((resolve) => example.once('exit', resolve))).toBe(0);
  }, 60_000);
});
