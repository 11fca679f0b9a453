// The collected fleet database, SQLite and a real PostgreSQL (started here in a temp data
// directory) held to one contract: each (board, id) stored once whatever is redelivered, marks
// that follow the chains, and the CLI's views of one board (history, info, sessions, boards)
// the same from either database.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openFleetStore, type FleetStore } from '../../src/fleet/store.js';
import { CLI, makeTempDir } from '../helpers/netns.js';
import { POSTGRES_BIN, Postgres } from '../helpers/postgres.js';

const run = promisify(execFile);
const T0 = Date.parse('2026-11-20T10:00:00Z');
const STICK = '/devices/pci0000:00/0000:00:14.0/usb1/1-2';

// A board's forwarded history: a stick plugged in port 1-2 (device, interface, disk), a veth
// whose carrier comes and goes, the stick unplugged, plugged again; a result that came later.
function payloads(board: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  let id = 0;
  let action = 0;
  const event = (a: string, devpath: string, subsystem: string, extra: Record<string, unknown> = {}) => {
    id++;
    const actions = a === 'add' && subsystem === 'block' ? [{ id: ++action, after: action - 1, kind: 'symlink', target: '/dev/stick', rule: 'stick.yaml:3', ok: true, error: null, exit_code: null, duration_ms: 1, finished_at: new Date(T0 + id * 1000).toISOString() }] : [];
    out.push({ type: 'event', board, id, after: id - 1, seqnum: id, action: a, devpath, subsystem, devtype: null, devname: null, driver: null, major: null, minor: null, source: 'kernel',
      received_at: new Date(T0 + id * 1000).toISOString(), properties: { ACTION: a }, device: null, result: null, rules: actions.length ? ['stick.yaml:3'] : [], actions, ...extra });
  };
  const key = 'usb:0781:5583:4C530001';
  const stick = (a: string) => {
    event(a, STICK, 'usb', { devtype: 'usb_device', device: key, devname: '/dev/bus/usb/001/005' });
    event(a, `${STICK}/1-2:1.0`, 'usb', { devtype: 'usb_interface', device: key });
    event(a, `${STICK}/1-2:1.0/host0/target0:0:0/0:0:0:0/block/sdb`, 'block', { devtype: 'disk', device: key, devname: '/dev/sdb',
      result: a === 'add' ? { properties: { ID_VENDOR: 'SanDisk', ID_MODEL: 'Cruzer' }, symlinks: ['/dev/stick'], tags: ['seat'] } : null });
  };
  stick('add');
  const veth = '/devices/virtual/net/veth0';
  event('add', veth, 'net', { device: `net:${veth}` });
  event('link-up', veth, 'net', { device: `net:${veth}`, properties: { INTERFACE: 'veth0', OPERSTATE: 'up', ADMIN: 'up', CARRIER: '1' } });
  event('address-add', veth, 'net', { device: `net:${veth}`, properties: { INTERFACE: 'veth0', IP_ADDRESS: '198.51.100.7', PREFIX_LENGTH: '24' } });
  stick('remove');
  stick('add');
  event('link-down', veth, 'net', { device: `net:${veth}`, properties: { INTERFACE: 'veth0', OPERSTATE: 'down', ADMIN: 'up', CARRIER: '0' } });
  out.push({ type: 'action', board, id: ++action, after: action - 1, event_id: 3, kind: 'job', target: 'backup', rule: 'stick.yaml:9', ok: false, error: 'exit 3', exit_code: 3, duration_ms: 900, finished_at: new Date(T0 + 60_000).toISOString() });
  out.push({ type: 'incident', board, id: 1, after: 0, kind: 'seqnum-gap', at: new Date(T0).toISOString(), detail: { missed: 2 } });
  return out;
}

const hasPostgres = POSTGRES_BIN !== undefined || process.env.CI === 'true';
const backends = [{ name: 'sqlite' }, ...(hasPostgres ? [{ name: 'postgres' }] : [])];

describe.each(backends)('the fleet database in $name', ({ name }) => {
  let target = '';
  let cleanup = () => {};
  let store: FleetStore;

  beforeAll(async () => {
    if (name === 'postgres') {
      const server = new Postgres();
      cleanup = () => server.remove();
      server.start();
      target = server.url;
    } else {
      const dir = makeTempDir('fleetstore');
      cleanup = () => dir.remove();
      target = join(dir.path, 'fleet.db');
    }
    store = await openFleetStore(target);
  }, 60_000);
  afterAll(async () => {
    await store?.close();
    cleanup();
  });

  const cli = async (...args: string[]) => {
    try {
      const { stdout, stderr } = await run(process.execPath, [CLI, ...args, '--db', target]);
      return { code: 0, stdout, stderr };
    } catch (error) {
      const e = error as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  };

  /** Stores one record as a message of its own; true when it was new. */
  const storeOne = async (board: string, p: Record<string, unknown>, now: number) => (await store.storeBatch(board, [p], now)).stored > 0;

  it('stores each (board, id) once, out of order and redelivered, and moves the marks only over what it holds', async () => {
    const all = payloads('b1');
    const [first, second, third, ...rest] = all;
    expect(await storeOne('b1', first!, T0)).toBe(true);
    expect(await storeOne('b1', third!, T0)).toBe(true); // 2 is missing: the mark waits at 1
    expect(await store.advanceMarks('b1')).toEqual({ event_id: 1, action_id: 1, incident_id: 0 }); // event 3's action came with it
    expect(await storeOne('b1', first!, T0)).toBe(false); // redelivered
    expect(await storeOne('b1', second!, T0)).toBe(true);
    for (const p of rest) expect(await storeOne('b1', p, T0)).toBe(true);
    for (const p of all) expect(await storeOne('b1', p, T0)).toBe(false);
    for (const p of payloads('b2')) await storeOne('b2', p, T0 + 5);
    await store.status('b1', 'online', '0.1.0', T0);
    expect(await store.advanceMarks('b1')).toEqual({ event_id: 13, action_id: 3, incident_id: 1 });
    const boards = await store.boards();
    expect(boards.map((b) => [b.name, b.events, b.status])).toEqual([['b1', 13, 'online'], ['b2', 13, null]]);
  });

  it('stores a message of many records at once, and keeps a different record for an id it holds as a conflict', async () => {
    const batch = payloads('b3');
    const outcome = await store.storeBatch('b3', batch, T0);
    expect(outcome).toEqual({ stored: 13 + 3 + 1, duplicates: 0, conflicts: [] }); // events, actions (in events and on their own), the incident
    expect(await store.advanceMarks('b3')).toEqual({ event_id: 13, action_id: 3, incident_id: 1 });
    expect(await store.storeBatch('b3', batch, T0)).toEqual({ stored: 0, duplicates: 17, conflicts: [] });
    // Sent again from another point (another `after`), or with results that came later: not a conflict.
    const again = { ...batch.find((p) => p.type === 'event' && p.id === 5)!, after: 0, actions: [] };
    expect((await store.storeBatch('b3', [again], T0)).conflicts).toEqual([]);
    // Another event under a held id: both kept, said.
    const other = { ...again, devpath: '/devices/virtual/net/forged' };
    const conflicted = await store.storeBatch('b3', [other], T0);
    expect(conflicted.conflicts).toEqual([expect.objectContaining({ stream: 'event', id: 5, received: expect.objectContaining({ devpath: '/devices/virtual/net/forged' }) })]);
    expect(conflicted.conflicts[0]!.stored.devpath).not.toBe('/devices/virtual/net/forged');
    const history = await cli('history', '--board', 'b3', '--json');
    expect(history.stdout).not.toContain('forged');
    const boards = await cli('boards');
    expect(boards.stdout).toMatch(/^b3: no status, 13 events, 1 conflicting records \(fleet_conflicts\)/m);
  });

  it('never carries a mark past the record a board sent next on a stray record with a far higher id', async () => {
    const [first, second] = payloads('b4');
    await storeOne('b4', first!, T0);
    await storeOne('b4', { ...second!, id: 1_000_000_000_000, after: first!.id, actions: [] }, T0);
    await storeOne('b4', second!, T0);
    expect((await store.advanceMarks('b4')).event_id).toBe(second!.id);
  });

  it('lists a board\'s events with every action once, filtered, newest N, as history --json', async () => {
    const history = await cli('history', '--board', 'b1', '--json');
    expect(history.code).toBe(0);
    const records = history.stdout.trim().split('\n').map((l) => JSON.parse(l) as { id: number; actions: { id: number; kind: string }[]; board?: string; after?: number });
    expect(records.map((r) => r.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
    expect(records[2]!.actions.map((a) => [a.id, a.kind])).toEqual([[1, 'symlink'], [3, 'job']]);
    expect(records[0]).not.toHaveProperty('board');
    expect(records[0]).not.toHaveProperty('after');
    const blocks = await cli('history', '--board', 'b1', '--subsystem', 'bl*', '--action', 'add', '--limit', '1', '--json');
    expect(blocks.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { id: number }).id)).toEqual([12]);
    const table = await cli('history', '--board', 'b1', '--since', '2026-11-20T10:00:05Z', '--until', '2026-11-20T10:00:07Z');
    expect(table.stdout).toMatch(/\n5 .*link-up/);
    expect(table.stdout.trim().split('\n')).toHaveLength(3); // header, 5 and 6
  });

  it('shows a board\'s device sessions and a device\'s info from the collected records', async () => {
    const sessions = await cli('sessions', '--board', 'b1', '--json');
    expect(sessions.code).toBe(0);
    const [usb, ...others] = sessions.stdout.trim().split('\n').map((l) => JSON.parse(l) as { device: { key: string; vendor: string }; sessions: { port: string; pluggedAt: number; unpluggedAt: number | null }[] });
    expect(others).toEqual([]); // the veth is not USB
    expect(usb!.device.key).toBe('usb:0781:5583:4C530001');
    expect(usb!.sessions.map((s) => [s.port, s.pluggedAt - T0, s.unpluggedAt === null ? null : s.unpluggedAt - T0])).toEqual([['1-2', 1000, 7000], ['1-2', 10_000, null]]);
    const all = await cli('sessions', '--board', 'b1', '--all', '--csv');
    expect(all.stdout).toContain('net:/devices/virtual/net/veth0,veth0,');
    const one = await cli('sessions', '--board', 'b1', '--device', 'sdb');
    expect(one.stdout).toMatch(/USB 0781:5583 .*serial 4C530001: first seen .* plugged 2 times/);
    expect(one.stdout.trim().split('\n')).toHaveLength(3);
    const missing = await cli('sessions', '--board', 'b1', '--device', 'nosuch');
    expect([missing.code, missing.stderr]).toEqual([1, expect.stringContaining('board "b1" forwarded no device "nosuch"') as string]);

    const info = await cli('info', '--board', 'b1', 'sdb', '--json');
    expect(info.code).toBe(0);
    const disk = JSON.parse(info.stdout) as { devpath: string; last: { id: number; symlinks: string[]; properties: Record<string, string> }; timeline: { id: number }[]; device: { key: string } };
    expect(disk.devpath).toBe(`${STICK}/1-2:1.0/host0/target0:0:0/0:0:0:0/block/sdb`);
    expect([disk.last.id, disk.last.symlinks, disk.last.properties.ID_MODEL]).toEqual([12, ['/dev/stick'], 'Cruzer']);
    expect(disk.timeline.map((r) => r.id)).toEqual([1, 2, 3, 7, 8, 9, 10, 11, 12]);
    const veth = await cli('info', '--board', 'b1', 'veth0');
    expect(veth.stdout).toMatch(/link {7}carrier down since .* \(operstate down, admin up\)\naddresses  198\.51\.100\.7\/24/);
    const gone = await cli('info', '--board', 'b9', 'sdb');
    expect([gone.code, gone.stderr]).toEqual([1, expect.stringContaining('board "b9" forwarded no event of "sdb"') as string]);
    const boards = await cli('boards');
    expect(boards.stdout).toMatch(/^b1: online \(hotplugd 0\.1\.0\), 13 events/);
  });

  it('refuses a database that is not a collected fleet with a clear error', async () => {
    const dir = makeTempDir('notfleet');
    try {
      const plain = name === 'postgres' ? target.replace('/fleet?', '/postgres?') : join(dir.path, 'plain.db');
      if (name === 'sqlite') await run(process.execPath, ['-e', `new (require(${JSON.stringify(join(import.meta.dirname, '../../node_modules/better-sqlite3'))}))(${JSON.stringify(plain)}).exec('CREATE TABLE t (x)')`]);
      const result = await run(process.execPath, [CLI, 'history', '--board', 'b1', '--db', plain]).catch((e: { code: number; stderr: string }) => e);
      expect(result).toMatchObject({ code: 2, stderr: expect.stringContaining('is not a collected fleet database (hotplugd collect --db)') as string });
    } finally {
      dir.remove();
    }
  });
});

// A collector's store must not slow down as a board's rows grow: each held id is looked up on
// the primary key. The planner once joined the lookups into a scan of all of the board's rows
// (a table it had not analysed yet looked small), costing ~5 ms per message at 9,000 rows.
describe.runIf(hasPostgres)('the PostgreSQL store statement', () => {
  it('looks up the ids of a message on the primary key, not by reading a board\'s rows', async () => {
    const server = new Postgres();
    const store = { current: undefined as FleetStore | undefined };
    try {
      server.start();
      store.current = await openFleetStore(server.url);
      const records = (from: number, to: number) =>
        Array.from({ length: to - from + 1 }, (_, i) => {
          const id = from + i;
          return { type: 'event', board: 'big', id, after: id - 1, seqnum: id, action: 'change', devpath: '/devices/virtual/net/lo', subsystem: 'net', devtype: null, devname: null, driver: null, major: null, minor: null, source: 'kernel',
            received_at: new Date(T0 + id).toISOString(), properties: { ACTION: 'change' }, device: null, result: null, rules: ['a.yaml:1'],
            actions: [{ id, after: id - 1, kind: 'symlink', target: '/dev/x', rule: 'a.yaml:1', ok: true, error: null, exit_code: null, duration_ms: 1, finished_at: new Date(T0 + id).toISOString() }] };
        });
      for (let from = 1; from <= 3000; from += 250) await store.current.storeBatch('big', records(from, from + 249), T0);
      const { storeStatement } = await import('../../src/fleet/store-postgres.js');
      const { statement } = storeStatement('big', records(3001, 3110), T0);
      const { default: pg } = await import('pg');
      const client = new pg.Client(server.url);
      await client.connect();
      try {
        // The plan for one message's values (custom) and the one kept after five executions (generic).
        const types = 'text, json, json, json, bigint, bigint[], bigint[], bigint[]';
        await client.query(`PREPARE store (${types}) AS ${statement.text}`);
        const literal = (v: unknown) => client.escapeLiteral(Array.isArray(v) ? `{${v.join(',')}}` : String(v));
        for (const setting of ['force_custom_plan', 'force_generic_plan']) {
          await client.query(`SET plan_cache_mode = ${setting}`);
          const { rows } = await client.query(`EXPLAIN (FORMAT JSON) EXECUTE store (${statement.values.map(literal).join(', ')})`);
          const reads: { type: string; relation: string; index?: string; cond?: string }[] = [];
          const walk = (node: Record<string, unknown>) => {
            const relation = node['Relation Name'] as string | undefined;
            if (relation?.startsWith('fleet_') && node['Node Type'] !== 'ModifyTable') {
              reads.push({ type: node['Node Type'] as string, relation, index: node['Index Name'] as string | undefined, cond: node['Index Cond'] as string | undefined });
            }
            for (const child of (node.Plans as Record<string, unknown>[] | undefined) ?? []) walk(child);
          };
          walk((rows[0] as { 'QUERY PLAN': { Plan: Record<string, unknown> }[] })['QUERY PLAN'][0]!.Plan);
          expect(reads.map((r) => r.relation).sort()).toEqual(['fleet_actions', 'fleet_events', 'fleet_incidents']);
          for (const read of reads) {
            expect(read, setting).toMatchObject({ type: 'Index Scan', index: `${read.relation}_pkey`, cond: expect.stringMatching(/\(board = .*\) AND \(id = /) });
          }
        }
      } finally {
        await client.end();
      }
    } finally {
      await store.current?.close();
      server.remove();
    }
  }, 120_000);
});
