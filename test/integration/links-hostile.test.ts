// Network links under attack and overload: 2,000 carrier flips while the daemon is stopped
// with a tiny route receive buffer (ENOBUFS, then a resync by dump), an interface deleted
// while its link-down waits in the queue, and forged route messages from a root process.
import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { canUseNamespaces, readHistory, readIncidents, startRuleDaemon, waitFor } from '../helpers/netns.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

const NET = '/devices/virtual/net';

function eventResults(dbPath: string, devpath: string): { id: number; action: string; source: string; note: string | null; actions: number }[] {
  const db = new Database(dbPath, { readonly: true });
  try {
    return db.prepare(`SELECT e.id, e.action, e.source, json_extract(e.result, '$.note') AS note,
        (SELECT count(*) FROM actions a WHERE a.event_id = e.id) AS actions
      FROM events e WHERE e.devpath = ? ORDER BY e.id`).all(devpath) as never;
  } finally {
    db.close();
  }
}

describe.skipIf(!canUseNamespaces())('network links, hostile', () => {
  it('after 2,000 flaps into a tiny buffer while stopped, resyncs by dump: the last state is recorded, flagged, with an incident', async () => {
    const { netns, daemon, dir } = await startRuleDaemon('linkstorm', cleanups, 'rules: []\n', ['--link-receive-buffer', '4K']);
    netns.ip('link', 'add', 'fla', 'type', 'veth', 'peer', 'name', 'flb');
    netns.ip('link', 'set', 'fla', 'up');
    netns.ip('link', 'set', 'flb', 'up');
    const linkEvents = () => readHistory(daemon.dbPath).filter((e) => e.devpath === `${NET}/fla` && e.action.startsWith('link-'));
    await waitFor(() => linkEvents().some((e) => e.action === 'link-up'), 20_000, 'link-up');

    daemon.signal('SIGSTOP');
    const batch = join(dir, 'flaps.batch');
    // The flaps fill the buffer; what comes after them (the carrier lost for good, an
    // address) is lost with the rest, and only the dump can tell it.
    writeFileSync(batch, `${Array.from({ length: 2000 }, () => 'link set flb down\nlink set flb up\n').join('')}link set flb down\naddr add 192.0.2.9/24 dev fla\n`);
    netns.ip('-batch', batch);
    daemon.signal('SIGCONT');

    await waitFor(() => readIncidents(daemon.dbPath).some((i) => i.kind === 'link-overflow'), 20_000, 'the link-overflow incident');
    expect((await daemon.cli(netns, 'settle', '--timeout', '20s')).code).toBe(0);
    const events = linkEvents();
    // Whatever was read before the loss, the history ends in the kernel's state: no carrier.
    expect(events.at(-1)).toMatchObject({ action: 'link-down' });
    const resynced = readHistory(daemon.dbPath).filter((e) => e.devpath === `${NET}/fla` && e.source === 'resync');
    expect(resynced.map((e) => `${e.action} ${e.properties.IP_ADDRESS ?? ''}`)).toContain('address-add 192.0.2.9');
    // Transitions only: never two link-ups or two link-downs in a row.
    for (let i = 1; i < events.length; i++) expect(events[i]!.action).not.toBe(events[i - 1]!.action);
    const incident = readIncidents(daemon.dbPath).find((i) => i.kind === 'link-overflow')!;
    expect(incident.detail.enobufsReports).toBeGreaterThan(0);
    const status = await daemon.cli(netns, 'status');
    expect(status.stdout).toMatch(/links: .* [1-9]\d* ENOBUFS \([1-9]\d* resyncs\)/);
    expect(await daemon.stop()).toBe(0);
  });

  it('does nothing for an interface deleted while its link-down was queued, and records that link-down before the remove', async () => {
    const rules = `rules:
  - name: on-link-down
    match: { action: link-down, kernel: "gna" }
    run: [["/bin/true"]]
`;
    const { netns, daemon } = await startRuleDaemon('linkgone', cleanups, rules);
    netns.ip('link', 'add', 'gna', 'type', 'veth', 'peer', 'name', 'gnb');
    netns.ip('link', 'set', 'gna', 'up');
    netns.ip('link', 'set', 'gnb', 'up');
    await waitFor(() => eventResults(daemon.dbPath, `${NET}/gna`).some((e) => e.action === 'link-up'), 20_000, 'link-up');

    daemon.signal('SIGSTOP');
    netns.ip('link', 'set', 'gnb', 'down'); // gna's link-down waits in the socket...
    netns.ip('link', 'del', 'gna'); // ...and the interface goes before it is read
    daemon.signal('SIGCONT');
    await waitFor(() => eventResults(daemon.dbPath, `${NET}/gna`).some((e) => e.action === 'remove'), 20_000, 'the remove');
    expect((await daemon.cli(netns, 'settle', '--timeout', '20s')).code).toBe(0);

    const events = eventResults(daemon.dbPath, `${NET}/gna`).filter((e) => e.action !== 'address-add' && e.action !== 'address-remove');
    expect(events.map((e) => e.action)).toEqual(['add', 'link-up', 'link-down', 'remove']);
    const down = events.find((e) => e.action === 'link-down')!;
    expect(down).toMatchObject({ source: 'rtnetlink', note: 'the interface was gone before its turn', actions: 0 });
  });

  it('records an interface\'s add before its link-up when both wait in their sockets', async () => {
    const { netns, daemon } = await startRuleDaemon('linkorder', cleanups, 'rules: []\n');
    // Stopped, the daemon finds both sockets readable at once when it goes on: 12 interfaces
    // added and brought up meanwhile, their adds in the uevent socket, link-ups in the route one.
    daemon.signal('SIGSTOP');
    const names = Array.from({ length: 6 }, (_, i) => [`ord${i}a`, `ord${i}b`]);
    for (const [a, b] of names) {
      netns.ip('link', 'add', a!, 'type', 'veth', 'peer', 'name', b!);
      netns.ip('link', 'set', a!, 'up');
      netns.ip('link', 'set', b!, 'up');
    }
    daemon.signal('SIGCONT');
    for (const name of names.flat()) {
      await waitFor(() => eventResults(daemon.dbPath, `${NET}/${name}`).some((e) => e.action === 'link-up'), 20_000, `${name}'s link-up`);
      const actions = eventResults(daemon.dbPath, `${NET}/${name}`).map((e) => e.action).filter((a) => a === 'add' || a === 'link-up');
      expect(actions.slice(0, 2), name).toEqual(['add', 'link-up']);
    }
  });

  it('drops route messages forged by a root process, counted, and records nothing of them', async () => {
    const { netns, daemon } = await startRuleDaemon('linkforged', cleanups, 'rules: []\n');
    // An RTM_NEWLINK for "evil0" (index 4242, up and running) sent by a process to RTMGRP_LINK.
    const forge = `
import socket, struct
attr = struct.pack('=HH', 4 + 6, 3) + b'evil0\\0' + b'\\0\\0'
body = struct.pack('=BxHiII', 0, 1, 4242, 0x10043, 0xffffffff) + attr
msg = struct.pack('=IHHII', 16 + len(body), 16, 0, 0, 0) + body
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
s.bind((0, 0))
for _ in range(5): s.sendto(msg, (0, 1))
`;
    execFileSync('ip', ['netns', 'exec', netns.name, 'python3', '-c', forge]);
    let status = '';
    for (let tries = 0; tries < 100 && !/links: .* 5 forged/.test(status); tries++) {
      status = (await daemon.cli(netns, 'status')).stdout;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(status).toMatch(/links: .* 5 forged, 0 malformed/);
    expect(readHistory(daemon.dbPath).filter((e) => e.action.startsWith('link-'))).toEqual([]);
    expect(daemon.logs.some((l) => String(l.msg).includes('Dropped a datagram: sender port'))).toBe(true);
  });
});
