// Network links over NETLINK_ROUTE, on the real kernel in network namespaces: carrier
// flips of veth pairs, addresses added and removed (documentation ranges, no traffic),
// debounce, jobs bound to the link, the start-up snapshot, and libudev listeners that
// must not see link events.
import Database from 'better-sqlite3';
import { execFileSync, spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, canUseNamespaces, countEvents, DaemonProcess, makeTempDir, Netns, readHistory, startRuleDaemon, waitFor } from '../helpers/netns.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

const NET = '/devices/virtual/net';

function actions(dbPath: string, where = '1'): { event_id: number; kind: string; target: string; rule: string | null; ok: number; error: string | null }[] {
  const db = new Database(dbPath, { readonly: true });
  try {
    return db.prepare(`SELECT event_id, kind, target, rule, ok, error FROM actions WHERE ${where} ORDER BY id`).all() as never;
  } finally {
    db.close();
  }
}

const linkEvents = (dbPath: string, devpath: string) => readHistory(dbPath).filter((e) => e.devpath === devpath && /^(link|address)-/.test(e.action));

describe.skipIf(!canUseNamespaces())('network links (NETLINK_ROUTE)', () => {
  it('records carrier changes and addresses as events, runs their rules, and keeps them off libudev\'s groups', async () => {
    const rules = `rules:
  - name: on-link-up
    match: { action: link-up, kernel: "lka" }
    run: [["/bin/true", "$env{CARRIER}", "$env{OPERSTATE}"]]
  - name: on-address
    match: { action: [address-add, address-remove], env: { ADDRESS_FAMILY: inet } }
    run: [["/bin/true", "$env{IP_ADDRESS}"]]
`;
    const { netns, daemon } = await startRuleDaemon('links', cleanups, rules);
    const monitor = spawn('ip', ['netns', 'exec', netns.name, 'udevadm', 'monitor', '--udev', '--property'], { stdio: ['ignore', 'pipe', 'ignore'] });
    cleanups.push(() => monitor.kill('SIGKILL'));
    let monitored = '';
    monitor.stdout.setEncoding('utf8').on('data', (chunk: string) => (monitored += chunk));
    const processed = spawn('ip', ['netns', 'exec', netns.name, process.execPath, CLI, 'monitor', '--processed', '--json', '--action', 'link-up', '--control', daemon.controlPath], { stdio: ['ignore', 'pipe', 'ignore'] });
    cleanups.push(() => processed.kill('SIGKILL'));
    let processedLines = '';
    processed.stdout.setEncoding('utf8').on('data', (chunk: string) => (processedLines += chunk));
    await new Promise((resolve) => setTimeout(resolve, 500));

    netns.ip('link', 'add', 'lka', 'type', 'veth', 'peer', 'name', 'lkb');
    netns.ip('link', 'set', 'lka', 'up');
    netns.ip('link', 'set', 'lkb', 'up'); // lka gets its carrier
    await waitFor(() => linkEvents(daemon.dbPath, `${NET}/lka`).some((e) => e.action === 'link-up'), 20_000, 'link-up');
    netns.ip('addr', 'add', '198.51.100.7/24', 'dev', 'lka');
    netns.ip('addr', 'add', '2001:db8::7/64', 'dev', 'lka', 'nodad');
    netns.ip('addr', 'del', '198.51.100.7/24', 'dev', 'lka');
    netns.ip('link', 'set', 'lkb', 'down'); // lka loses it
    await waitFor(() => linkEvents(daemon.dbPath, `${NET}/lka`).some((e) => e.action === 'link-down'), 20_000, 'link-down');

    const events = linkEvents(daemon.dbPath, `${NET}/lka`).filter((e) => !(e.action.startsWith('address') && e.properties.SCOPE === 'link'));
    expect(events.map((e) => `${e.action} ${e.properties.IP_ADDRESS ?? ''}`.trim())).toEqual([
      'link-up', 'address-add 198.51.100.7', 'address-add 2001:db8::7', 'address-remove 198.51.100.7', 'link-down',
    ]);
    expect(events.every((e) => e.source === 'rtnetlink' && e.subsystem === 'net')).toBe(true);
    expect(events[0]!.properties).toMatchObject({ ACTION: 'link-up', INTERFACE: 'lka', CARRIER: '1', OPERSTATE: 'up', ADMIN: 'up' });
    expect(events[1]!.properties).toMatchObject({ IP_ADDRESS: '198.51.100.7', PREFIX_LENGTH: '24', ADDRESS_FAMILY: 'inet', SCOPE: 'global' });
    expect(events[4]!.properties).toMatchObject({ CARRIER: '0', OPERSTATE: 'lowerlayerdown', ADMIN: 'up' });
    // The rules ran: once for link-up, once for each IPv4 address change.
    const programs = actions(daemon.dbPath, "kind = 'program'");
    expect(programs.map((a) => a.rule?.split(' ')[0])).toEqual(['on-link-up', 'on-address', 'on-address']);
    expect(programs.every((a) => a.ok === 1)).toBe(true);
    // Interfaces whose carrier never changed (lkb admin up with lka up first) say nothing more.
    const history = execFileSync(process.execPath, [CLI, 'history', '--action', 'link-down', '--db', daemon.dbPath], { encoding: 'utf8' });
    expect(history.split('\n').filter((line) => line.includes(`${NET}/lka`))).toHaveLength(1);
    const sessions = execFileSync(process.execPath, [CLI, 'sessions', '--links', '--interface', 'lka', '--csv', '--db', daemon.dbPath], { encoding: 'utf8' }).trim().split('\n');
    expect(sessions[0]).toBe('interface,devpath,up_at,down_at,duration_ms,end_missed,present_at_start');
    expect(sessions.slice(1)).toEqual([expect.stringMatching(new RegExp(`^lka,${NET}/lka,\\d{4}-[^,]+Z,\\d{4}-[^,]+Z,\\d+,false,false$`))]);

    const info = execFileSync('ip', ['netns', 'exec', netns.name, process.execPath, CLI, 'info', 'lka', '--db', daemon.dbPath], { encoding: 'utf8' });
    expect(info).toMatch(/^link {7}carrier down since .* \(operstate lowerlayerdown, admin up\)$/m);
    expect(info).toMatch(/^addresses {2}.*2001:db8::7\/64/m);
    expect(info).not.toContain('198.51.100.7');

    // Subscribers of processed events got the link-ups, and only those.
    await waitFor(() => processedLines.includes('"lka"'), 10_000, 'monitor --processed to show the link-up');
    const shown = processedLines.trim().split('\n').map((line) => JSON.parse(line) as { action: string; source: string; properties: Record<string, string> });
    expect(shown.every((e) => e.action === 'link-up')).toBe(true);
    expect(shown.find((e) => e.properties.INTERFACE === 'lka')).toMatchObject({ source: 'rtnetlink', properties: { CARRIER: '1' } });

    // libudev listeners got the interfaces' uevents and no link event.
    await waitFor(() => monitored.includes('INTERFACE=lka'), 10_000, 'the monitor to see lka');
    expect(monitored).not.toMatch(/ACTION=(link|address)-/);
    const status = await daemon.cli(netns, 'status');
    expect(status.stdout).toMatch(/links: \d+ interfaces followed, \d+ changes from \d+ route datagrams, 0 forged, 0 malformed, 0 ENOBUFS/);
  });

  it('debounces: a 0.2 s flap against 1 s does nothing (cancelled, recorded), a held state acts', async () => {
    const rules = `rules:
  - name: uplink-lost
    match: { action: link-down, kernel: "dba" }
    debounce: 1s
    run: [["/bin/true", "failover"]]
`;
    const { netns, daemon } = await startRuleDaemon('debounce', cleanups, rules);
    netns.ip('link', 'add', 'dba', 'type', 'veth', 'peer', 'name', 'dbb');
    netns.ip('link', 'set', 'dba', 'up');
    netns.ip('link', 'set', 'dbb', 'up');
    await waitFor(() => linkEvents(daemon.dbPath, `${NET}/dba`).some((e) => e.action === 'link-up'), 20_000, 'link-up');

    netns.ip('link', 'set', 'dbb', 'down');
    await new Promise((resolve) => setTimeout(resolve, 200));
    netns.ip('link', 'set', 'dbb', 'up');
    await waitFor(() => actions(daemon.dbPath, "kind = 'debounce'").length === 1, 20_000, 'the cancellation');
    await new Promise((resolve) => setTimeout(resolve, 1200));
    expect(actions(daemon.dbPath, "kind = 'program'")).toEqual([]);
    const [cancelled] = actions(daemon.dbPath, "kind = 'debounce'");
    expect(cancelled).toMatchObject({ ok: 0, target: '1000 ms' });
    expect(cancelled!.error).toMatch(/^cancelled: link-up came after \d+ ms$/);

    netns.ip('link', 'set', 'dbb', 'down'); // held
    await waitFor(() => actions(daemon.dbPath, "kind = 'program'").length === 1, 20_000, 'the debounced action');
    const fired = actions(daemon.dbPath, "kind = 'debounce' AND ok = 1");
    expect(fired).toHaveLength(1);
    const turns = readHistory(daemon.dbPath).filter((e) => e.source === 'debounce');
    expect(turns.map((e) => `${e.action} ${e.devpath}`)).toEqual([`link-down ${NET}/dba`]);
    // The program ran on the debounced turn, and the original link-down records that it fired.
    expect(actions(daemon.dbPath, "kind = 'program'")[0]!.event_id).toBe(turns[0]!.id);
    expect(fired[0]!.event_id).toBeLessThan(turns[0]!.id);
    const metrics = await daemon.cli(netns, 'status', '--rules');
    // Matched by two link-downs and the debounced turn; one action; one turn acted, one cancelled.
    expect(metrics.stdout).toMatch(/\s3\s+1\s+0\s+1\s+1\s+[\d.]+\s+[\d.]+\s+uplink-lost \(/);
    expect(metrics.stdout.match(/uplink-lost/g)).toHaveLength(1);
  });

  it('runs a job while the cable is in: started by link-up, stopped by link-down and by the remove', async () => {
    const rules = `rules:
  - name: dhcp
    match: { action: link-up, kernel: "jb*" }
    job: { argv: ["/bin/sleep", "1000"] }
`;
    const { netns, daemon } = await startRuleDaemon('linkjob', cleanups, rules);
    netns.ip('link', 'add', 'jba', 'type', 'veth', 'peer', 'name', 'jbb');
    netns.ip('link', 'set', 'jba', 'up');
    const jobs = () => actions(daemon.dbPath, "kind LIKE 'job-%'").map((a) => a.kind);
    netns.ip('link', 'set', 'jbb', 'up'); // both get a carrier: a job each
    await waitFor(() => jobs().filter((k) => k === 'job-start').length === 2, 20_000, 'two jobs');
    netns.ip('link', 'set', 'jbb', 'down'); // both lose it
    await waitFor(() => jobs().filter((k) => k === 'job-stop').length === 2, 20_000, 'the jobs stopped by link-down');
    netns.ip('link', 'set', 'jbb', 'up');
    await waitFor(() => jobs().filter((k) => k === 'job-start').length === 4, 20_000, 'started again');
    netns.ip('link', 'del', 'jba'); // the pair goes: its remove stops what link-down did not
    await waitFor(() => jobs().filter((k) => k === 'job-stop').length === 4, 20_000, 'stopped by the remove');
    const status = await daemon.cli(netns, 'status');
    expect(status.stdout).toContain('jobs: 0');
  });

  it('records the links and addresses present at start once, as coldplug does', async () => {
    const netns = new Netns('linksnap');
    cleanups.push(() => netns.delete());
    const dir = makeTempDir('linksnap');
    cleanups.push(() => dir.remove());
    netns.ip('link', 'add', 'spa', 'type', 'veth', 'peer', 'name', 'spb');
    netns.ip('link', 'set', 'spa', 'up');
    netns.ip('link', 'set', 'spb', 'up');
    netns.ip('addr', 'add', '192.0.2.5/24', 'dev', 'spa');
    const daemon = new DaemonProcess(netns, `${dir.path}/history.db`, ['--no-watch']);
    cleanups.push(() => daemon.kill());
    await daemon.waitForLog('hotplugd started');
    expect((await daemon.cli(netns, 'settle', '--timeout', '60s')).code).toBe(0);
    await waitFor(() => linkEvents(daemon.dbPath, `${NET}/spa`).length >= 2, 20_000, 'the snapshot');
    const snapshot = linkEvents(daemon.dbPath, `${NET}/spa`).filter((e) => e.properties.SCOPE !== 'link');
    expect(snapshot.map((e) => `${e.action} ${e.source} ${e.properties.IP_ADDRESS ?? ''}`.trim())).toEqual(['link-up coldplug', 'address-add coldplug 192.0.2.5']);
    expect(countEvents(daemon.dbPath, "devpath = ? AND action = 'link-down'", `${NET}/lo`)).toBe(1); // lo is down here
    expect(await daemon.stop()).toBe(0);
  });
});
