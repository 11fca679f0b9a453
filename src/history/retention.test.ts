import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ruleFromLabel } from '../../test/helpers/rule.js';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openHistoryDb, type HistoryDb } from './db.js';
import { Retention, type RetentionStep } from './retention.js';
import { forgetOtherTargets, oldestUnforwarded, writeCursors } from './outbox.js';
import { HistoryWriter } from './writer.js';
import { createProperties, eventFromProperties } from '../uevent/event.js';

let dir: string;
let db: HistoryDb;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hotplugd-retention-'));
  db = openHistoryDb(join(dir, 'h.db'));
});
afterEach(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

const DAY = 86_400_000;
const NOW = Date.parse('2026-11-22T12:00:00Z');

const RULE = ruleFromLabel('r (a.yaml:1:3)');

/** `count` events, one per `spacingMs` ending at `end`, each with an action and a rule match. */
function record(count: number, end: number, spacingMs: number, padding = 0): void {
  const writer = new HistoryWriter(db, { batchSize: 5000 });
  for (let i = 0; i < count; i++) {
    const properties = createProperties();
    Object.assign(properties, { ACTION: 'change', DEVPATH: '/devices/virtual/net/lo', SUBSYSTEM: 'net', PAD: 'x'.repeat(padding) });
    const id = writer.recordEvent(eventFromProperties(properties, end - (count - 1 - i) * spacingMs, 'kernel'), {
      rules: [RULE],
      device: { key: 'net:/devices/virtual/net/lo', subsystem: 'net', devpath: '/devices/virtual/net/lo' },
    });
    writer.recordAction(id, { kind: 'program', target: '/bin/true', rule: 'r (a.yaml:1:3)', ok: true, error: null, durationMs: 1 });
  }
  writer.flush();
}

function runToEnd(retention: Retention): RetentionStep[] {
  const steps: RetentionStep[] = [];
  for (let i = 0; i < 10_000; i++) {
    const step = retention.step(NOW);
    steps.push(step);
    if (step.done) return steps;
  }
  throw new Error('retention never finished');
}

const count = (table: string) => (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;

describe('retention', () => {
  it('deletes events older than the age limit, with their actions and rule matches, a chunk per step', () => {
    record(1000, NOW, DAY / 10); // 100 days, ten events a day
    const steps = runToEnd(new Retention(db, { maxAgeMs: 30 * DAY }, 100));
    expect(Math.max(...steps.map((s) => s.deleted))).toBeLessThanOrEqual(100);
    expect(steps.filter((s) => s.deleted > 0).length).toBeGreaterThanOrEqual(7);
    const oldest = (db.prepare('SELECT min(received_at) AS t FROM events').get() as { t: number }).t;
    expect(oldest).toBeGreaterThanOrEqual(NOW - 30 * DAY);
    expect(oldest).toBeLessThan(NOW - 29 * DAY);
    expect(count('events')).toBe(count('actions'));
    expect(count('events')).toBe(count('rule_matches'));
    // The device still has events, so it stays.
    expect(count('devices')).toBe(1);
  });

  it('keeps the newest rows under the row limit', () => {
    record(350, NOW, 1000);
    const steps = runToEnd(new Retention(db, { maxRows: 100 }, 50));
    expect(count('events')).toBe(100);
    expect((db.prepare('SELECT min(id) AS id FROM events').get() as { id: number }).id).toBe(251);
    expect(steps.filter((s) => s.deleted > 0).map((s) => s.deleted)).toEqual([50, 50, 50, 50, 50]);
    expect(steps.every((s) => s.done || s.reasons.includes('rows'))).toBe(true);
  });

  it('keeps the database under the size limit and gives the freed pages back to the file system', () => {
    record(4000, NOW, 1000, 1000); // about 4 MB of properties
    db.pragma('wal_checkpoint(TRUNCATE)');
    const before = statSync(join(dir, 'h.db')).size;
    const retention = new Retention(db, { maxBytes: 1024 * 1024 }, 500);
    expect(retention.usedBytes()).toBeGreaterThan(3 * 1024 * 1024);
    runToEnd(retention);
    expect(retention.usedBytes()).toBeLessThanOrEqual(1024 * 1024);
    expect(count('events')).toBeGreaterThan(0);
    db.pragma('wal_checkpoint(TRUNCATE)');
    expect(statSync(join(dir, 'h.db')).size).toBeLessThan(before / 2);
  });

  it('forgets devices without events once they are older than the age limit', () => {
    record(10, NOW - 60 * DAY, 1000);
    runToEnd(new Retention(db, { maxAgeMs: 30 * DAY }));
    expect(count('events')).toBe(0);
    expect(count('devices')).toBe(0);
  });
});

describe('retention while forwarding', () => {
  it('keeps events a forwarding target has not had acknowledged, unless the size limit forces it', () => {
    record(100, NOW, 1000, 2000);
    writeCursors(db, 'mqtt://broker hotplugd/b1', { eventId: 30, actionId: 0, incidentId: 0 });
    runToEnd(new Retention(db, { maxRows: 10 }, 25));
    // The row limit asked for the newest 10; the target still needs 31..100.
    expect((db.prepare('SELECT min(id) AS id FROM events').get() as { id: number }).id).toBe(31);
    const steps = runToEnd(new Retention(db, { maxBytes: 64 * 1024 }, 25));
    const dropped = steps.reduce((sum, s) => sum + s.unforwardedDeleted, 0);
    expect(dropped).toBeGreaterThan(0);
    expect(dropped).toBe(70 - count('events'));
  });
  it('forgets the cursors of targets no longer forwarded to', () => {
    writeCursors(db, 'old', { eventId: 1, actionId: 0, incidentId: 0 });
    writeCursors(db, 'new', { eventId: 5, actionId: 0, incidentId: 0 });
    forgetOtherTargets(db, 'new');
    expect(oldestUnforwarded(db)).toBe(6);
    forgetOtherTargets(db, undefined);
    expect(oldestUnforwarded(db)).toBeUndefined();
  });
});
