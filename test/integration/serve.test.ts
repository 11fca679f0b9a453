// `hotplugd serve` against a real daemon in a network namespace: its JSON API over a unix
// socket, then the page end to end in Debian's headless Chromium (driven by playwright-core,
// run inside the namespace): a veth made during the test is listed, its sessions are drawn as
// bars, a hostile interface name renders as text, the live view shows a new event within a
// second, and a non-local address asks for the token. Screenshots go to test-artifacts/.
import { mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openFleetStore } from '../../src/fleet/store.js';
import { canUseNamespaces, startRuleDaemon, waitFor, type Netns } from '../helpers/netns.js';
import { CHROMIUM, CHROMIUM_ARGS, chromiumInNetns, get, ServeProcess } from '../helpers/serve.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

const HOSTILE = 'va<i>x';
const ARTIFACTS = join(import.meta.dirname, '../../test-artifacts');

/** A daemon with a veth named HOSTILE plugged twice, and `serve` beside it on a unix socket (and `listen`). */
async function setUp(prefix: string, listen?: string[]) {
  const { netns, daemon, dir } = await startRuleDaemon(prefix, cleanups);
  netns.ip('link', 'set', 'lo', 'up');
  for (const _ of [1, 2]) {
    netns.ip('link', 'add', HOSTILE, 'type', 'veth', 'peer', 'name', 'vb');
    netns.ip('link', 'del', HOSTILE);
  }
  netns.ip('link', 'add', HOSTILE, 'type', 'veth', 'peer', 'name', 'vb');
  expect((await daemon.cli(netns, 'settle')).code).toBe(0);
  const socket = join(dir, 'serve.sock');
  const serve = new ServeProcess(netns, ['--db', daemon.dbPath, '--control', daemon.controlPath, ...(listen ?? ['--listen', `unix:${socket}`])]);
  cleanups.push(() => serve.kill());
  await serve.started();
  return { netns, daemon, dir, serve, socket };
}

const json = async (socket: string, path: string) => {
  const reply = await get(socket, path);
  expect(reply.status, `${path}: ${reply.body}`).toBe(200);
  return JSON.parse(reply.body) as Record<string, unknown>;
};

describe.runIf(canUseNamespaces())('hotplugd serve', () => {
  it('answers the JSON API from the history and the daemon: read-only, bounded, streaming from a cursor', async () => {
    const { netns, socket } = await setUp('serveapi');
    const { devices } = (await json(socket, `/api/devices?q=${encodeURIComponent(HOSTILE)}`)) as { devices: { id: number; key: string; present: boolean; names: string[] }[] };
    const veth = devices.find((d) => d.key === `net:/devices/virtual/net/${HOSTILE}`)!;
    expect(veth).toMatchObject({ present: true, names: [HOSTILE] });
    const one = (await json(socket, `/api/devices/${veth.id}`)) as { sessions: unknown[]; events: { action: string }[]; last: { properties: Record<string, string> } };
    expect(one.sessions).toHaveLength(3);
    expect(one.events.map((e) => e.action)).toEqual(['add', 'remove', 'add', 'remove', 'add']);
    expect(one.last.properties.INTERFACE).toBe(HOSTILE);
    const events = (await json(socket, `/api/events?device=${encodeURIComponent(HOSTILE)}&action=remove&limit=1`)) as { events: { id: number; action: string }[] };
    expect(events.events.map((e) => e.action)).toEqual(['remove']);
    expect(((await json(socket, '/api/sessions?all=1')) as { devices: unknown[] }).devices.length).toBeGreaterThan(0);
    expect(await json(socket, '/api/incidents')).toEqual({ incidents: [] });
    const rates = (await json(socket, '/api/rates?since=1h')) as { series: Record<string, number[]>; times: number[] };
    expect(rates.series.net!.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(5);
    const status = (await json(socket, '/api/status')) as { daemon: { pid: number; ruleMetrics: unknown[] }; history: { events: number } };
    expect(status.daemon.pid).toBeGreaterThan(0);
    expect(Array.isArray(status.daemon.ruleMetrics)).toBe(true);

    expect((await get(socket, '/api/status', { method: 'POST' })).status).toBe(405);
    expect((await get(socket, '/api/events?limit=100000')).body).toContain('limit: a number from 1 to 1000');
    expect((await get(socket, `/api/devices?q=${'x'.repeat(300)}`)).status).toBe(400);
    expect((await get(socket, '/api/devices/999999')).status).toBe(404);
    expect((await get(socket, '/../../etc/passwd')).status).toBe(404);
    const page = await get(socket, '/');
    expect(page.headers['content-security-policy']).toContain("default-src 'none'; script-src 'self'");
    expect(page.body).toContain('<script type="module" src="/app.js"></script>');

    // The live stream from a cursor: what was recorded after it, then what comes.
    const cursor = status.history.events;
    const ids: number[] = [];
    const stream = request({ socketPath: socket, path: `/api/stream?cursor=${cursor - 2}` }, (res) => {
      expect(res.headers['content-type']).toContain('text/event-stream');
      res.setEncoding('utf8').on('data', (chunk: string) => ids.push(...[...chunk.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]))));
    });
    stream.end();
    cleanups.push(() => stream.destroy());
    await waitFor(() => ids.length === 2, 10_000, 'the two replayed events');
    netns.writeUevents('/sys/class/net/lo/uevent', 'change', 1);
    await waitFor(() => ids.length === 3, 10_000, 'the live event');
    expect(ids).toEqual([cursor - 1, cursor, cursor + 1]);
  }, 60_000);

  it('needs a token on any address but localhost, and then asks for it', async () => {
    const { netns, dir, daemon } = await setUp('servetok');
    const refused = new ServeProcess(netns, ['--listen', '10.77.0.1:8080']);
    expect(await refused.exited()).toBe(2);
    expect(refused.log).toContain('an address other than localhost needs --auth-token-file');
    writeFileSync(join(dir, 'token'), 'short\n');
    const short = new ServeProcess(netns, ['--listen', 'unix:/tmp/x', '--auth-token-file', join(dir, 'token')]);
    expect(await short.exited()).toBe(2);
    writeFileSync(join(dir, 'token'), 'a-token-of-24-characters\n');
    const socket = join(dir, 'guarded.sock');
    const guarded = new ServeProcess(netns, ['--listen', `unix:${socket}`, '--auth-token-file', join(dir, 'token'), '--db', daemon.dbPath]);
    cleanups.push(() => guarded.kill());
    await guarded.started();
    expect((await get(socket, '/api/devices')).status).toBe(401);
    expect((await get(socket, '/api/devices', { headers: { authorization: 'Bearer a-token-of-24-characterX' } })).status).toBe(401);
    expect((await get(socket, '/api/devices', { headers: { authorization: 'Bearer a-token-of-24-characters' } })).status).toBe(200);
    expect((await get(socket, '/')).status).toBe(200); // the page holds no data
    // A socket a killed server left behind is taken over; one a live server holds is not.
    guarded.kill();
    await guarded.exited();
    const again = new ServeProcess(netns, ['--listen', `unix:${socket}`, '--auth-token-file', join(dir, 'token'), '--db', daemon.dbPath]);
    cleanups.push(() => again.kill());
    await again.started();
    const twice = new ServeProcess(netns, ['--listen', `unix:${socket}`, '--auth-token-file', join(dir, 'token')]);
    expect(await twice.exited()).toBe(1);
    expect(twice.log).toContain(`cannot listen on unix:${socket}: listen EADDRINUSE`);
    expect((await get(socket, '/api/devices', { headers: { authorization: 'Bearer a-token-of-24-characters' } })).status).toBe(200);
    const elsewhere = join(dir, 'nodb.sock');
    const noHistory = new ServeProcess(netns, ['--listen', `unix:${elsewhere}`, '--db', join(dir, 'none.db')]);
    cleanups.push(() => noHistory.kill());
    await noHistory.started();
    const missing = await get(elsewhere, '/api/devices');
    expect([missing.status, missing.body]).toEqual([503, expect.stringContaining('none.db') as string]);
  }, 60_000);

  it('shows a collected fleet database with --fleet: its boards and each board\'s events', async () => {
    const { netns, dir, daemon, socket } = await setUp('servefleet');
    const fleetPath = join(dir, 'fleet.db');
    const store = await openFleetStore(fleetPath);
    const board = 'b<1>';
    for (let id = 1; id <= 3; id++) {
      await store.storeBatch(board, [{ type: 'event', board, id, after: id - 1, action: 'add', subsystem: 'tty', devpath: `/devices/x/tty${id}`, received_at: new Date().toISOString(), properties: {}, rules: [], actions: [] }], Date.now());
    }
    await store.status(board, 'online', '0.1.0', Date.now());
    await store.close();
    expect((await get(socket, '/api/boards')).body).toContain('no fleet database (hotplugd serve --fleet)');
    const fleetSocket = join(dir, 'fleet.sock');
    const serve = new ServeProcess(netns, ['--listen', `unix:${fleetSocket}`, '--db', daemon.dbPath, '--fleet', fleetPath]);
    cleanups.push(() => serve.kill());
    await serve.started();
    const boards = (await json(fleetSocket, '/api/boards')) as { boards: { name: string; events: number; status: string }[] };
    expect(boards.boards.map((b) => [b.name, b.events, b.status])).toEqual([[board, 3, 'online']]);
    const events = (await json(fleetSocket, `/api/boards/${encodeURIComponent(board)}/events?limit=2`)) as { events: { id: number }[] };
    expect(events.events.map((e) => e.id)).toEqual([2, 3]);
    expect((await get(fleetSocket, `/api/boards/${encodeURIComponent('a#b')}/events`)).status).toBe(400);
    expect(((await json(fleetSocket, '/api/status')) as { fleet: boolean }).fleet).toBe(true);
  }, 60_000);

  describe.runIf(CHROMIUM !== undefined || process.env.CI === 'true')('in headless Chromium', () => {
    async function browserIn(netns: Netns, dir: string) {
      const { chromium } = await import('playwright-core');
      const browser = await chromium.launch({ executablePath: chromiumInNetns(netns, dir), args: CHROMIUM_ARGS });
      cleanups.push(() => void browser.close());
      mkdirSync(ARTIFACTS, { recursive: true });
      return browser;
    }

    it('lists the veth, draws its sessions, shows a hostile name as text and a new event within a second', async () => {
      const port = 18000 + Math.floor(Math.random() * 2000);
      const { netns, dir } = await setUp('serveweb', ['--listen', `127.0.0.1:${port}`]);
      const browser = await browserIn(netns, dir);
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (error) => errors.push(error.message));
      page.on('console', (message) => message.type() === 'error' && errors.push(message.text()));
      await page.goto(`http://127.0.0.1:${port}/#/devices`);
      const row = page.locator('#devices tr', { hasText: `net:/devices/virtual/net/${HOSTILE}` });
      await row.waitFor();
      expect(await page.locator('#devices i').count()).toBe(0); // "<i>x" is text, not an element
      await page.screenshot({ path: join(ARTIFACTS, 'devices.png'), fullPage: true });
      // The search applies 200 ms after typing: wait until the other device's row has gone
      // (the vb row is there before the search too), then clear the search and wait for the
      // new rows, so no pending search replaces the row under the click.
      await page.fill('#search', 'vb');
      await row.waitFor({ state: 'detached' });
      await page.locator('#devices tr', { hasText: 'net:/devices/virtual/net/vb' }).waitFor();
      await page.fill('#search', '');
      await row.waitFor();
      await row.locator('a').click();
      await page.locator('#sessions .bar').first().waitFor();
      expect(await page.locator('#sessions .bar').count()).toBe(3);
      expect(await page.locator('h2').textContent()).toBe(`net:/devices/virtual/net/${HOSTILE}`);
      await page.screenshot({ path: join(ARTIFACTS, 'device.png'), fullPage: true });

      await page.goto(`http://127.0.0.1:${port}/#/live`);
      await page.locator('#live-state', { hasText: 'live' }).waitFor();
      const before = await page.locator('#live tbody tr').count();
      const wrote = Date.now();
      netns.writeUevents('/sys/class/net/lo/uevent', 'change', 1);
      await page.locator('#live tbody tr').nth(before).waitFor({ timeout: 1000 });
      const latency = Date.now() - wrote;
      expect(latency).toBeLessThan(1000);
      await page.screenshot({ path: join(ARTIFACTS, 'live.png'), fullPage: true });

      await page.goto(`http://127.0.0.1:${port}/#/activity`);
      await page.locator('#rates canvas').first().waitFor();
      await page.screenshot({ path: join(ARTIFACTS, 'activity.png'), fullPage: true });
      expect(errors, errors.join('\n')).toEqual([]); // nothing the CSP refused, no script error
    }, 90_000);

    it('asks for the token on a non-local address, and shows the devices once given', async () => {
      const { netns, dir, daemon } = await setUp('servewebtok');
      netns.ip('addr', 'add', '10.77.0.1/24', 'dev', 'vb');
      netns.ip('link', 'set', 'vb', 'up');
      netns.ip('link', 'set', HOSTILE, 'up');
      writeFileSync(join(dir, 'token'), 'a-token-of-24-characters\n');
      const port = 18000 + Math.floor(Math.random() * 2000);
      const guarded = new ServeProcess(netns, ['--listen', `10.77.0.1:${port}`, '--auth-token-file', join(dir, 'token'), '--db', daemon.dbPath, '--control', daemon.controlPath]);
      cleanups.push(() => guarded.kill());
      await guarded.started();
      const browser = await browserIn(netns, dir);
      const page = await browser.newPage();
      await page.goto(`http://10.77.0.1:${port}/#/devices`);
      await page.locator('h2', { hasText: 'A token is needed' }).waitFor();
      await page.fill('#token', 'a-token-of-24-characters');
      await page.press('#token', 'Enter');
      await page.locator('#devices tr', { hasText: HOSTILE }).first().waitFor();
      await page.screenshot({ path: join(ARTIFACTS, 'token.png'), fullPage: true });
    }, 90_000);
  });
});
