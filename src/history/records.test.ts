import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ruleFromLabel } from '../../test/helpers/rule.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openHistoryDb, SCHEMA_VERSION } from './db.js';
import { iterateProcessed, listEvents, listIncidents, processedRecord } from './records.js';
import { HistoryWriter } from './writer.js';
import type { Plan } from '../rules/plan.js';
import { parseUevent } from '../uevent/parse.js';
import { loadKernelCaptures } from '../../test/helpers/fixtures.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hotplugd-history-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const events = loadKernelCaptures().map((c, i) => {
  const result = parseUevent(c.datagram, Date.parse('2026-11-22T10:00:00.000Z') + i);
  if (!result.ok) throw new Error(result.detail);
  return result.event;
});

describe('history database', () => {
  it('creates the schema in WAL mode with a version', () => {
    const path = join(dir, 'sub', 'h.db');
    const db = openHistoryDb(path);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    db.close();
    // Opening again is a no-op migration.
    openHistoryDb(path).close();
  });

  it('refuses a database from a newer hotplugd', () => {
    const path = join(dir, 'future.db');
    const raw = new Database(path);
    raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    raw.close();
    expect(() => openHistoryDb(path)).toThrow(/schema version/);
  });

  it('records events in batches and reads them back in the documented shape', () => {
    const db = openHistoryDb(join(dir, 'h.db'));
    const writer = new HistoryWriter(db, { batchSize: 10, flushDelayMs: 10_000 });
    for (const event of events) writer.recordEvent(event);
    // Three full batches of 10 are committed, 9 wait for the timer or a flush.
    expect(writer.eventsCommitted).toBe(30);
    expect(writer.pending).toBe(events.length - 30);
    writer.flush();
    expect(writer.eventsCommitted).toBe(events.length);
    expect(writer.rowsCommitted).toBe(events.length);

    const records = listEvents(db);
    expect(records).toHaveLength(events.length);
    const move = records.find((r) => r.action === 'move')!;
    const source = events.find((e) => e.action === 'move')!;
    expect(move).toEqual({
      id: expect.any(Number),
      seqnum: source.seqnum,
      action: 'move',
      devpath: source.devpath,
      subsystem: 'net',
      devtype: null,
      devname: null,
      driver: null,
      major: null,
      minor: null,
      source: 'kernel',
      received_at: new Date(source.receivedAt).toISOString(),
      properties: { ...source.properties },
    });
    expect(Object.keys(move.properties)).toEqual(Object.keys(source.properties));
    expect(listEvents(db, { limit: 3 }).map((r) => r.seqnum)).toEqual(records.slice(-3).map((r) => r.seqnum));
    db.close();
  });

  it('records incidents', () => {
    const db = openHistoryDb(join(dir, 'h.db'));
    const writer = new HistoryWriter(db);
    writer.recordIncident({ kind: 'seqnum-gap', at: 0, detail: { after: 1, before: 5, missed: 3 } });
    writer.flush();
    expect(listIncidents(db)).toEqual([{ id: 1, kind: 'seqnum-gap', at: '1970-01-01T00:00:00.000Z', detail: { after: 1, before: 5, missed: 3 } }]);
    db.close();
  });

});

describe('schema migrations', () => {
  it('migrates a version 1 file in place, keeping its rows, and numbers new events after them', () => {
    const path = join(dir, 'v1.db');
    const v1 = new Database(path);
    v1.exec(`CREATE TABLE events (id INTEGER PRIMARY KEY, seqnum INTEGER, action TEXT NOT NULL, devpath TEXT NOT NULL,
      subsystem TEXT NOT NULL, devtype TEXT, devname TEXT, driver TEXT, major INTEGER, minor INTEGER, source TEXT NOT NULL,
      received_at INTEGER NOT NULL, properties TEXT NOT NULL);
      CREATE INDEX events_devpath ON events (devpath, id); CREATE INDEX events_received_at ON events (received_at);
      CREATE TABLE incidents (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, at INTEGER NOT NULL, detail TEXT NOT NULL);
      INSERT INTO events VALUES (5, 1, 'add', '/devices/pci0000:00/usb1/1-1', 'usb', 'usb_device', NULL, NULL, NULL, NULL, 'kernel', 0,
        '{"ACTION":"add","PRODUCT":"1e3d/2093/100"}');
      INSERT INTO events VALUES (6, 2, 'add', '/devices/pci0000:00/usb1/1-1/1-1:1.0/host2', 'scsi', NULL, NULL, NULL, NULL, NULL, 'kernel', 1, '{}');
      INSERT INTO events VALUES (7, 3, 'add', '/devices/x', 'net', NULL, NULL, NULL, NULL, NULL, 'kernel', 2, '{}');
      PRAGMA user_version = 1;`);
    v1.close();
    const db = openHistoryDb(path);
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(listEvents(db).map((e) => e.id)).toEqual([5, 6, 7]);
    // Every old row gets its physical device: the USB stick by vendor:product and port (no serial was recorded).
    expect(db.prepare('SELECT e.id, d.key, d.first_seen, d.last_seen FROM events e JOIN devices d ON d.id = e.device_id ORDER BY e.id').all()).toEqual([
      { id: 5, key: 'usb:1e3d:2093@1-1', first_seen: 0, last_seen: 1 },
      { id: 6, key: 'usb:1e3d:2093@1-1', first_seen: 0, last_seen: 1 },
      { id: 7, key: 'net:/devices/x', first_seen: 2, last_seen: 2 },
    ]);
    const writer = new HistoryWriter(db);
    const id = writer.recordEvent(events[0]!);
    expect(id).toBe(8);
    writer.recordAction(id, { kind: 'program', target: '/bin/true', rule: 'r (f:1:1)', ok: false, error: 'exit code 1', durationMs: 3, argv: ['/bin/true'], exitCode: 1, signal: null, timedOut: false, stdout: '', stderr: '' });
    writer.flush();
    expect(db.prepare('SELECT event_id, kind, ok, exit_code, timed_out, argv FROM actions').all()).toEqual([
      { event_id: 8, kind: 'program', ok: 0, exit_code: 1, timed_out: 0, argv: '["/bin/true"]' },
    ]);
    expect(listEvents(db).map((e) => e.id)).toEqual([5, 6, 7, 8]);
    db.close();
  });

  it('records what the rules changed and which rules matched, and reads it back as subscribers see it', () => {
    const db = openHistoryDb(join(dir, 'v3.db'));
    const writer = new HistoryWriter(db);
    const event = events[0]!;
    const plan = {
      properties: { ...event.properties, ID_SERIAL: 'x_1', DEVLINKS: '/dev/serial/by-id/x' },
      symlinks: ['/dev/serial/by-id/x'],
      tags: ['seat'],
    } as unknown as Plan;
    delete (plan.properties as Record<string, string>).SEQNUM;
    const rules = ['serial (60-serial.yaml:3:3)', 'seat (70.yaml:1:3)'];
    const id = writer.recordEvent(event, { plan, rules: rules.map((r) => ruleFromLabel(r)) });
    const plain = writer.recordEvent(events[1]!, { rules: [] });
    writer.flush();
    const replayed = [...iterateProcessed(db, 0, plain)];
    expect(replayed.map((r) => r.id)).toEqual([id, plain]);
    const live = processedRecord(id, event, plan, rules);
    expect(replayed[0]).toEqual(live);
    expect(live.properties).toMatchObject({ ID_SERIAL: 'x_1', DEVLINKS: '/dev/serial/by-id/x' });
    expect(live.properties.SEQNUM).toBeUndefined();
    expect(live).toMatchObject({ symlinks: ['/dev/serial/by-id/x'], tags: ['seat'], rules });
    expect(replayed[1]).toMatchObject({ symlinks: [], tags: [], rules: [] });
    expect(db.prepare('SELECT result FROM events WHERE id = ?').get(plain)).toEqual({ result: null });
    db.close();
  });
});
