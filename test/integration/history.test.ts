// The history as an operator uses it, on real kernel events in a namespace: filters,
// formats, --follow, info, sessions and replay against another rule set.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, canUseNamespaces, startRuleDaemon, waitFor } from '../helpers/netns.js';
import type { HistoryRecord } from '../../src/history/query.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

const RULES = (role: string) => `rules:
  - name: mark-uplink
    match: { action: add, subsystem: net, kernel: "hv*" }
    set: { env: { HP_ROLE: ${role} } }
    run: [["/bin/true"]]
`;

function cli(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

const jsonLines = (text: string) => text.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as HistoryRecord);

describe.skipIf(!canUseNamespaces())('the device history from the command line', () => {
  it('filters, formats, follows, shows a device, its sessions, and replays against other rules', async () => {
    const { netns, daemon, dir } = await startRuleDaemon('hist', cleanups, RULES('uplink'));
    const db = ['--db', daemon.dbPath];
    netns.ip('link', 'add', 'hva0', 'type', 'veth', 'peer', 'name', 'hvb0');
    expect((await daemon.cli(netns, 'settle', '--timeout', '20s')).code).toBe(0);
    netns.ip('link', 'del', 'hva0');
    expect((await daemon.cli(netns, 'settle', '--timeout', '20s')).code).toBe(0);

    const all = jsonLines(cli('history', '--json', ...db).stdout);
    expect(all.length).toBeGreaterThanOrEqual(4);
    const hva0 = jsonLines(cli('history', '--json', '--device', 'hva0', ...db).stdout);
    expect(hva0.map((r) => [r.action, r.devpath])).toEqual([
      ['add', '/devices/virtual/net/hva0'],
      ['remove', '/devices/virtual/net/hva0'],
    ]);
    const [add] = hva0;
    expect(add).toMatchObject({ device: 'net:/devices/virtual/net/hva0', result: { properties: { HP_ROLE: 'uplink' } } });
    expect(add!.rules).toEqual([expect.stringMatching(/^mark-uplink \(.*10-test\.yaml:2:\d+\)$/)]);
    expect(add!.actions).toEqual([expect.objectContaining({ kind: 'program', target: '/bin/true', ok: true, exit_code: 0 })]);

    const adds = jsonLines(cli('history', '--json', '--subsystem', 'ne?', '--action', 'add', ...db).stdout);
    expect(adds.map((r) => r.devpath).sort()).toEqual(['/devices/virtual/net/hva0', '/devices/virtual/net/hvb0']);
    const marked = jsonLines(cli('history', '--json', '--property', 'HP_ROLE=up*', ...db).stdout);
    expect(marked.map((r) => r.id)).toEqual(adds.map((r) => r.id));
    // --rule: the events a rule matched, by the name the table shows or a glob of its label.
    expect(jsonLines(cli('history', '--json', '--rule', 'mark-uplink', ...db).stdout).map((r) => r.id)).toEqual(adds.map((r) => r.id));
    expect(jsonLines(cli('history', '--json', '--rule', '*10-test.yaml:2:*', '--limit', '1', ...db).stdout).map((r) => r.id)).toEqual(adds.slice(-1).map((r) => r.id));
    expect(cli('history', '--json', '--rule', 'no-such-rule', ...db).stdout).toBe('');
    expect(jsonLines(cli('history', '--json', '--since', '1h', '--limit', '2', ...db).stdout).map((r) => r.id)).toEqual(all.slice(-2).map((r) => r.id));
    expect(cli('history', '--json', '--until', '1h', ...db).stdout).toBe('');
    expect(cli('history', '--since', 'someday', ...db)).toMatchObject({ code: 2, stderr: expect.stringContaining('--since') });
    expect(cli('history', '--device', 'nosuch0', ...db)).toMatchObject({ code: 1, stderr: expect.stringContaining('no device "nosuch0"') });

    const csv = cli('history', '--csv', '--action', 'add', ...db).stdout.trim().split('\n');
    expect(csv[0]).toBe('id,received_at,seqnum,action,subsystem,devpath,devtype,devname,driver,major,minor,source,device,rules,actions,properties');
    expect(csv.length - 1).toBe(all.filter((r) => r.action === 'add').length);
    const table = cli('history', '--device', 'hva0', ...db).stdout.split('\n');
    expect(table[0]).toMatch(/^ID\s+TIME\s+ACTION\s+SUBSYSTEM\s+DEVICE\s+WHAT HAPPENED$/);
    expect(table[1]).toMatch(/add\s+net\s+\/devices\/virtual\/net\/hva0\s+rules: mark-uplink; 1 action$/);

    // --follow prints what is recorded from now on.
    const follow = spawn(process.execPath, [CLI, 'history', '--follow', '--json', '--subsystem', 'net', ...db]);
    cleanups.push(() => follow.kill());
    let followed = '';
    follow.stdout.setEncoding('utf8').on('data', (chunk: string) => (followed += chunk));
    await waitFor(() => followed.includes('hvb0'), 10_000, 'the newest events');
    netns.ip('link', 'add', 'hvc0', 'type', 'veth', 'peer', 'name', 'hvd0');
    await waitFor(() => followed.includes('"devpath":"/devices/virtual/net/hvd0"'), 10_000, '--follow to print hvd0');
    expect(jsonLines(followed).filter((r) => r.devpath === '/devices/virtual/net/hvc0').map((r) => r.action)).toEqual(['add']);
    follow.kill();

    // info: gone from sysfs, still known from the history.
    const info = cli('info', 'hva0', ...db);
    expect(info.code, info.stderr).toBe(0);
    expect(info.stdout).toContain('devpath    /devices/virtual/net/hva0  (not present now)');
    expect(info.stdout).toContain('  HP_ROLE=uplink');
    expect(info.stdout).toMatch(/timeline of the device \(newest 2\):\n.*add\s+\/devices\/virtual\/net\/hva0\s+1 action\n.*remove/);
    const sessions = JSON.parse(cli('sessions', '--device', 'hva0', '--json', ...db).stdout) as { sessions: { pluggedAt: number; unpluggedAt: number }[] };
    expect(sessions.sessions).toHaveLength(1);
    expect(sessions.sessions[0]!.unpluggedAt).toBeGreaterThanOrEqual(sessions.sessions[0]!.pluggedAt);

    // Replay: the proposed rules change the role; exactly the events the rule matched change.
    await daemon.cli(netns, 'settle');
    const proposed = join(dir, 'proposed.d');
    mkdirSync(proposed);
    writeFileSync(join(proposed, '10-test.yaml'), RULES('downlink'));
    const rulesDir = join(dir, 'rules.d');
    const replay = cli('test', '--replay', '--json', '--base-rules-dir', rulesDir, '--rules-dir', proposed, ...db);
    expect(replay.code, replay.stderr).toBe(1);
    const lines = replay.stdout.trim().split('\n').map((l) => JSON.parse(l) as { id?: number; changes?: unknown[]; replayed?: number; changed?: number });
    const matched = jsonLines(cli('history', '--json', ...db).stdout).filter((r) => r.rules.length > 0).map((r) => r.id);
    expect(matched.length).toBe(4); // hva0, hvb0, hvc0, hvd0
    expect(lines.slice(0, -1).map((l) => l.id)).toEqual(matched);
    expect(lines[0]!.changes).toEqual([{ field: 'properties', before: { HP_ROLE: 'uplink' }, after: { HP_ROLE: 'downlink' } }]);
    expect(lines.at(-1)).toMatchObject({ changed: 4 });
    const same = cli('test', '--replay', '--base-rules-dir', rulesDir, '--rules-dir', rulesDir, ...db);
    expect(same.code).toBe(0);
    expect(same.stdout).toMatch(/recorded events replayed; the plan of 0 would change/);
  });
});
