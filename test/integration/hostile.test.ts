// The daemon driven as an attacker or a careless operator would: thousands of control
// connections, clients that never close, a daemon out of file descriptors. Each test
// runs a real daemon in its own network namespace and cleans up whatever happens.
import { readdirSync, readlinkSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { canUseNamespaces, readHistory, startRuleDaemon, waitFor, type DaemonProcess } from '../helpers/netns.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

/** The daemon's open descriptors, from /proc (its PID is the child's: ip netns exec and prlimit exec). */
function openFds(daemon: DaemonProcess): number {
  return readdirSync(`/proc/${daemon.child.pid}/fd`).length;
}

/** The daemon's open sockets. */
function openSockets(daemon: DaemonProcess): number {
  const dir = `/proc/${daemon.child.pid}/fd`;
  let n = 0;
  for (const fd of readdirSync(dir)) {
    try {
      if (readlinkSync(`${dir}/${fd}`).startsWith('socket:')) n++;
    } catch {
      // closed while we looked
    }
  }
  return n;
}

interface Client {
  socket: Socket;
  /** What the daemon sent. */
  data: string;
  /** True once the daemon closed its end (or the connection failed). */
  ended: boolean;
  /** Why the connection failed, if it did. */
  error?: string | undefined;
}

/**
 * Opens `count` connections that keep their own end open (allowHalfOpen), optionally
 * sending one request line each; resolves once every one is connected or has failed.
 * They go in waves of 100, so that the listen backlog does not refuse most of them.
 */
async function connect(path: string, count: number, request?: (i: number) => string): Promise<Client[]> {
  const clients: Client[] = [];
  cleanups.push(() => clients.forEach((c) => c.socket.destroy()));
  for (let first = 0; first < count; first += 100) {
    await Promise.all(Array.from({ length: Math.min(100, count - first) }, (_, k) => open(first + k)));
    // A connect completes in the listen backlog: give the daemon a turn to accept the wave.
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return clients;

  function open(i: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const socket = createConnection({ path, allowHalfOpen: true });
      const client: Client = { socket, data: '', ended: false };
      clients.push(client);
      socket.setEncoding('utf8');
      // With a request, a wave ends when each has its answer: the daemon's backlog stays short.
      socket.on('data', (chunk: string) => {
        client.data += chunk;
        if (request) resolve();
      });
      socket.on('end', () => {
        client.ended = true;
        resolve();
      });
      socket.on('error', (error: NodeJS.ErrnoException) => {
        client.ended = true;
        client.error = error.code;
        resolve();
      });
      socket.on('connect', () => {
        if (request) socket.write(request(i));
        else resolve();
      });
    });
  }
}

/** Each recorded net add: its devpath, the rules that matched (joined) and the note of its result. */
function netAdds(dbPath: string): { devpath: string; rules: string | null; note: string | undefined }[] {
  const db = new Database(dbPath, { readonly: true });
  try {
    const rows = db.prepare(`SELECT devpath, result, (SELECT group_concat(rule, ', ') FROM rule_matches WHERE event_id = events.id) AS rules
      FROM events WHERE subsystem = 'net' AND action = 'add' ORDER BY id`).all() as { devpath: string; result: string | null; rules: string | null }[];
    return rows.map((r) => ({ devpath: r.devpath, rules: r.rules, note: r.result ? (JSON.parse(r.result) as { note?: string }).note : undefined }));
  } finally {
    db.close();
  }
}

async function status(daemon: DaemonProcess): Promise<Record<string, number>> {
  const { stdout, code } = await daemon.cli(undefined, 'status', '--json');
  expect(code).toBe(0);
  return (JSON.parse(stdout) as { counters: Record<string, number> }).counters;
}

describe.skipIf(!canUseNamespaces())('control connections under attack', () => {
  it('closes its end after an answer or a refusal, even when the client keeps its end open', async () => {
    const { daemon } = await startRuleDaemon('ctl-close', cleanups);
    const before = openSockets(daemon);
    const clients = await connect(daemon.controlPath, 400, (i) => (i % 2 === 0 ? '{"command":"status"}\n' : '{"command":"no-such"}\n'));
    await waitFor(() => clients.every((c) => c.data.endsWith('\n')), 20_000, 'every answer');
    expect(clients.filter((c) => c.data.startsWith('{"ok":true')).length).toBe(200);
    expect(clients.filter((c) => c.data.includes('unknown command')).length).toBe(200);
    // The clients still hold their ends; the daemon must have let go of all 400.
    await waitFor(() => clients.every((c) => c.ended), 5_000, 'the daemon to close every answered connection');
    await waitFor(() => openSockets(daemon) <= before, 5_000, `the daemon's sockets back to ${before} (now ${openSockets(daemon)})`);
  });

  it('caps connections per uid: the rest are refused with a reason, counted, and logged once', async () => {
    const { daemon } = await startRuleDaemon('ctl-cap', cleanups, undefined, ['--max-connections-per-uid', '50']);
    const clients = await connect(daemon.controlPath, 200);
    await waitFor(() => clients.filter((c) => c.ended).length === 150, 10_000, '150 refusals');
    const refused = clients.filter((c) => c.ended);
    expect(refused.every((c) => c.data === '{"ok":false,"error":"too many control connections; try again later"}\n')).toBe(true);
    for (const c of clients) c.socket.destroy();
    await waitFor(() => openSockets(daemon) < 20, 5_000, 'the silent connections to be let go');
    const counters = await status(daemon);
    expect(counters.controlOverLimit).toBe(150);
    expect(daemon.logs.filter((l) => l.msg === 'Refused control connections: too many open')).toHaveLength(1);
  });

  it('holds its descriptors within the total cap against 3,000 connections, and answers afterwards', async () => {
    const { daemon } = await startRuleDaemon('ctl-flood', cleanups, undefined, ['--max-connections', '256', '--max-connections-per-uid', '100000']);
    const clients = await connect(daemon.controlPath, 3000);
    await waitFor(() => clients.filter((c) => c.ended).length >= 3000 - 256, 30_000, 'the connections beyond the cap refused');
    expect(openSockets(daemon)).toBeLessThan(256 + 20);
    for (const c of clients) c.socket.destroy();
    // Some connections may never reach the daemon on a loaded machine (the listen backlog
    // was full); every one that did beyond the cap was refused by it, with its reason.
    const refusedByDaemon = clients.filter((c) => c.data.includes('too many control connections')).length;
    const neverReached = clients.filter((c) => c.error !== undefined && c.data === '').length;
    expect(refusedByDaemon).toBeGreaterThan(0);
    expect(refusedByDaemon + neverReached).toBeGreaterThanOrEqual(3000 - 256);
    const counters = await status(daemon);
    expect(counters.controlOverLimit).toBe(refusedByDaemon);
    expect(counters.controlAcceptFailures).toBe(0);
  });
});

describe.skipIf(!canUseNamespaces())('subscribers under attack', () => {
  const many = ['--max-connections', '5000', '--max-connections-per-uid', '5000'];

  it('refuses subscribers beyond --max-subscribers with a reason, out of 1,000 attempts', async () => {
    const { daemon } = await startRuleDaemon('sub-cap', cleanups, undefined, [...many, '--max-subscribers', '300']);
    const clients = await connect(daemon.controlPath, 1000, () => '{"command":"subscribe","subsystems":["tty"]}\n');
    await waitFor(() => clients.every((c) => c.data.includes('\n') || c.ended), 20_000, 'every answer');
    expect(clients.filter((c) => c.data.startsWith('{"ok":true,"cursor":')).length).toBe(300);
    // A few connections may fail in the kernel's listen backlog; the rest are refused by the daemon.
    const refused = clients.filter((c) => c.data.startsWith('{"ok":false'));
    expect(refused.length).toBeGreaterThan(600);
    expect(refused.length + 300 + clients.filter((c) => c.data === '').length).toBe(1000);
    expect(refused[0]!.data).toMatch(/too many subscribers \(300; the limit is 300, see --max-subscribers\)/);
    await waitFor(() => refused.every((c) => c.ended), 5_000, 'the refused connections closed');
    expect((await status(daemon)).subscribers).toBe(300);
  });

  it('holds one bounded buffer for 200 stalled subscribers during a storm, and drops them all', async () => {
    const { netns, daemon } = await startRuleDaemon('sub-stall', cleanups, undefined, [...many, '--max-subscribers', '200']);
    const clients = await connect(daemon.controlPath, 200, () => '{"command":"subscribe","subsystems":["net"]}\n');
    await waitFor(() => clients.every((c) => c.data.includes('\n')), 20_000, 'every answer');
    for (const c of clients) c.socket.pause();
    // 20,000 events of about 450 bytes: each stalled subscriber falls past its 4 MiB.
    const storm = netns.startUevents('/sys/class/net/lo/uevent', 'change');
    let maxHeld = 0;
    let written = 0;
    try {
      while (written === 0) {
        const counters = await status(daemon);
        maxHeld = Math.max(maxHeld, counters.subscriberBytesHeld!);
        if (counters.processed! >= 20_000) written = await storm.stop();
      }
    } finally {
      if (written === 0) await storm.stop();
    }
    await waitFor(() => daemon.logs.filter((l) => l.msg.startsWith('Dropped a subscriber: it did not read')).length === 200, 30_000, '200 subscribers dropped');
    const counters = await status(daemon);
    expect(counters.subscribersDropped).toBe(200);
    expect(counters.subscribers).toBe(0);
    expect(counters.subscriberBytesHeld).toBe(0);
    // One shared log of at most 4 MiB behind the newest line, plus one turn's lines.
    expect(maxHeld).toBeLessThan(5 * 1024 * 1024);
  });
});

describe.skipIf(!canUseNamespaces())('a daemon out of file descriptors', () => {
  it('does not turn EMFILE into a silent non-match: the evaluation fails, is counted and recorded', async () => {
    const rules = 'rules:\n  - name: mtu\n    match: { subsystem: net, attrs: { mtu: "?*" } }\n    set: { env: { MTU_SEEN: "$attr{mtu}" } }\n';
    // The caps are lifted so that connections can take every descriptor the daemon has.
    const { netns, daemon } = await startRuleDaemon('emfile', cleanups, rules,
      ['--max-connections', '100000', '--max-connections-per-uid', '100000'], undefined, ['prlimit', '--nofile=200:200']);
    netns.ip('link', 'add', 'before0', 'type', 'veth', 'peer', 'name', 'before1');
    await waitFor(() => readHistory(daemon.dbPath).some((e) => e.devpath.endsWith('/before0')), 10_000, 'the first event');
    // Silent connections hold their descriptors for the request timeout (10 s): long enough.
    const hogs = await connect(daemon.controlPath, 400);
    await waitFor(() => openFds(daemon) >= 199, 10_000, `the daemon to run out of descriptors (${openFds(daemon)} open)`);
    for (let i = 0; i < 5; i++) netns.ip('link', 'add', `starved${i}`, 'type', 'veth', 'peer', 'name', `starvedpeer${i}`);
    await waitFor(() => readHistory(daemon.dbPath).filter((e) => /\/starved\d$/.test(e.devpath)).length === 5, 10_000, 'the events while starved');
    for (const c of hogs) c.socket.destroy();
    netns.ip('link', 'add', 'after0', 'type', 'veth', 'peer', 'name', 'after1');
    await waitFor(() => readHistory(daemon.dbPath).some((e) => e.devpath.endsWith('/after0')), 10_000, 'the event after recovery');

    const history = netAdds(daemon.dbPath);
    const byName = (name: string) => history.find((e) => e.devpath.endsWith(`/${name}`))!;
    expect(byName('before0').rules).toMatch(/^mtu /);
    expect(byName('after0').rules).toMatch(/^mtu /);
    for (let i = 0; i < 5; i++) {
      const starved = byName(`starved${i}`);
      // Either the rule matched (a descriptor was free at that moment) or the failure is on record.
      if (starved.rules === null) expect(starved.note).toMatch(/^rules not evaluated: Failed to read .*EMFILE/);
    }
    const counters = await status(daemon);
    expect(counters.evaluationFailures).toBeGreaterThan(0);
    expect(counters.evaluationFailures).toBe(history.filter((e) => e.note?.startsWith('rules not evaluated')).length);
    expect(daemon.logs.some((l) => typeof l.msg === 'string' && l.msg.startsWith('Failed to evaluate rules: Failed to read') && l.msg.includes('EMFILE'))).toBe(true);
  });
});
