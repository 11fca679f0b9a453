import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ruleFromLabel } from '../../test/helpers/rule.js';
import { createProperties, eventFromProperties } from '../uevent/event.js';
import { openHistoryDb, SCHEMA_VERSION } from './db.js';
import { queryEvents } from './query.js';
import { iterateProcessed } from './records.js';
import { ruleFilter } from './rule-sets.js';
import { HistoryWriter } from './writer.js';

const dir = mkdtempSync(join(tmpdir(), 'hotplugd-rule-sets-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const event = (devpath: string, at: number) =>
  eventFromProperties(Object.assign(createProperties(), { ACTION: 'change', DEVPATH: devpath, SUBSYSTEM: 'net', INTERFACE: devpath.split('/').at(-1)! }), at, 'kernel');

const count = (db: Database.Database, table: string) => (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;

/** A history file as version 7 left it: a rule_matches row per matched rule. */
function writeVersion7(path: string): void {
  const v7 = new Database(path);
  v7.exec(`CREATE TABLE events (id INTEGER PRIMARY KEY, seqnum INTEGER, action TEXT NOT NULL, devpath TEXT NOT NULL,
      subsystem TEXT NOT NULL, devtype TEXT, devname TEXT, driver TEXT, major INTEGER, minor INTEGER, source TEXT NOT NULL,
      received_at INTEGER NOT NULL, properties TEXT NOT NULL, result TEXT, device_id INTEGER);
    CREATE TABLE incidents (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, at INTEGER NOT NULL, detail TEXT NOT NULL);
    CREATE TABLE actions (id INTEGER PRIMARY KEY, event_id INTEGER NOT NULL, kind TEXT NOT NULL, target TEXT NOT NULL, rule TEXT,
      ok INTEGER NOT NULL, error TEXT, exit_code INTEGER, signal TEXT, timed_out INTEGER, duration_ms REAL NOT NULL, argv TEXT,
      stdout TEXT, stderr TEXT, finished_at INTEGER NOT NULL);
    CREATE TABLE rule_matches (event_id INTEGER NOT NULL, rule TEXT NOT NULL);
    CREATE INDEX rule_matches_event ON rule_matches (event_id);
    CREATE INDEX rule_matches_rule ON rule_matches (rule, event_id);
    CREATE TABLE devices (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, subsystem TEXT NOT NULL, devpath TEXT NOT NULL,
      vendor_id TEXT, product_id TEXT, serial TEXT, vendor TEXT, model TEXT, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL);
    CREATE TABLE device_names (name TEXT NOT NULL, device_id INTEGER NOT NULL, PRIMARY KEY (name, device_id)) WITHOUT ROWID;
    CREATE TABLE forward_cursors (target TEXT PRIMARY KEY, event_id INTEGER NOT NULL, action_id INTEGER NOT NULL, incident_id INTEGER NOT NULL) WITHOUT ROWID;
    INSERT INTO events (id, action, devpath, subsystem, source, received_at, properties) VALUES
      (1, 'add', '/devices/virtual/net/lo', 'net', 'kernel', 0, '{}'), (2, 'change', '/devices/virtual/net/lo', 'net', 'kernel', 1, '{}'),
      (3, 'change', '/devices/virtual/net/lo', 'net', 'kernel', 2, '{}'), (4, 'remove', '/devices/virtual/net/lo', 'net', 'kernel', 3, '{}');
    INSERT INTO rule_matches VALUES (1, 'b (/r/b.yaml:2:3)'), (1, 'a (/r/a.yaml:1:3)'), (2, 'a (/r/a.yaml:1:3)'), (2, 'b (/r/b.yaml:2:3)'),
      (3, 'b (/r/b.yaml:2:3)'), (3, 'a (/r/a.yaml:1:3)'), (4, 'odd label');
    PRAGMA user_version = 7;`);
  v7.close();
}

describe('matched rules in the history', () => {
  it('keeps each rule and each list of matched rules once, and reads them back in match order', () => {
    const db = openHistoryDb(join(dir, 'sets.db'));
    const writer = new HistoryWriter(db);
    const goto = ruleFromLabel('50-udev-default.rules:31 (/usr/lib/udev/rules.d/50-udev-default.rules:31:1)', 'SUBSYSTEM!="net", GOTO="default_end"');
    const link = ruleFromLabel('80-net-setup-link.rules:9 (/usr/lib/udev/rules.d/80-net-setup-link.rules:9:1)', 'IMPORT{builtin}="net_setup_link"');
    const dhcp = ruleFromLabel('dhcp (/etc/hotplugd/rules.d/dhcp.yaml:3:5)', '- name: dhcp');
    const ids: number[] = [];
    for (let i = 0; i < 100; i++) ids.push(writer.recordEvent(event('/devices/virtual/net/lo', i), { rules: [goto, link] }));
    ids.push(writer.recordEvent(event('/devices/virtual/net/veth0', 100), { rules: [link, goto, dhcp] }));
    ids.push(writer.recordEvent(event('/devices/virtual/net/veth0', 101), {}));
    writer.flush();
    expect([count(db, 'rules'), count(db, 'rule_sets')]).toEqual([3, 2]);
    const records = [...queryEvents(db, {})];
    expect(records[0]!.rules).toEqual([
      '50-udev-default.rules:31 (/usr/lib/udev/rules.d/50-udev-default.rules:31:1)',
      '80-net-setup-link.rules:9 (/usr/lib/udev/rules.d/80-net-setup-link.rules:9:1)',
    ]);
    expect(records[100]!.rules.map((r) => r.replace(/ \(.*/, ''))).toEqual(['80-net-setup-link.rules:9', '50-udev-default.rules:31', 'dhcp']);
    expect(records[101]!.rules).toEqual([]);
    // As subscribers replay it, and as the old table's queries see it (a view now).
    expect([...iterateProcessed(db, ids[99]!, ids[101]!)].map((r) => r.rules.length)).toEqual([3, 0]);
    expect(db.prepare('SELECT rule, count(*) AS n FROM rule_matches GROUP BY rule ORDER BY n DESC, rule').all()).toEqual([
      { rule: '50-udev-default.rules:31 (/usr/lib/udev/rules.d/50-udev-default.rules:31:1)', n: 101 },
      { rule: '80-net-setup-link.rules:9 (/usr/lib/udev/rules.d/80-net-setup-link.rules:9:1)', n: 101 },
      { rule: 'dhcp (/etc/hotplugd/rules.d/dhcp.yaml:3:5)', n: 1 },
    ]);

    // A reload: new rule objects, the same rules keep their ids; a rule whose text changed is another rule.
    const again = new HistoryWriter(db);
    again.recordEvent(event('/devices/virtual/net/lo', 200), { rules: [{ ...goto }, { ...link }] });
    again.recordEvent(event('/devices/virtual/net/lo', 201), { rules: [{ ...goto, text: 'SUBSYSTEM!="net|tty", GOTO="default_end"' }, { ...link }] });
    again.flush();
    expect([count(db, 'rules'), count(db, 'rule_sets')]).toEqual([4, 3]);

    // history --rule: by name or label, globs.
    const matching = (...rules: string[]) => [...queryEvents(db, { rules })].map((r) => r.id);
    expect(matching('dhcp')).toEqual([ids[100]]);
    expect(matching('80-net-*')).toHaveLength(103);
    expect(matching('*dhcp.yaml:3:5)')).toEqual([ids[100]]);
    expect(matching('nothing', 'dhcp')).toEqual([ids[100]]);
    expect(matching('nothing')).toEqual([]);
    expect([...queryEvents(db, { rules: ['50-udev-default.rules:31'] }, { limit: 2 })].map((r) => r.id)).toEqual([ids[101]! + 1, ids[101]! + 2]);
    db.close();
  });

  it('finds events by rule through the rule_set index, not by reading every event', () => {
    const db = openHistoryDb(join(dir, 'plan.db'));
    const filter = ruleFilter(db, ['dhcp']);
    const plan = db.prepare(`EXPLAIN QUERY PLAN SELECT e.id FROM events e WHERE ${filter.sql} AND e.id > 0 ORDER BY e.id DESC LIMIT 10`).all(...filter.params) as { detail: string }[];
    expect(plan.map((p) => p.detail).join('\n')).toMatch(/SEARCH e USING COVERING INDEX events_rule_set \(rule_set=\? AND id>\?\)/);
    db.close();
  });

  it('migrates a version 7 file: rule_matches rows become rules, lists and a view of the same rows', () => {
    const path = join(dir, 'v7.db');
    writeVersion7(path);
    const db = openHistoryDb(path);
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(count(db, 'rules')).toBe(3);
    expect(count(db, 'rule_sets')).toBe(3); // b,a  a,b  odd
    expect([...queryEvents(db, {})].map((r) => r.rules)).toEqual([
      ['b (/r/b.yaml:2:3)', 'a (/r/a.yaml:1:3)'], ['a (/r/a.yaml:1:3)', 'b (/r/b.yaml:2:3)'], ['b (/r/b.yaml:2:3)', 'a (/r/a.yaml:1:3)'], ['odd label'],
    ]);
    expect(db.prepare('SELECT event_id, rule FROM rule_matches WHERE event_id = 2 ORDER BY position').all()).toEqual([
      { event_id: 2, rule: 'a (/r/a.yaml:1:3)' }, { event_id: 2, rule: 'b (/r/b.yaml:2:3)' },
    ]);
    // A rule recorded now, with its text, is the same rule as before only if nothing changed: the old rows had no text.
    const writer = new HistoryWriter(db);
    writer.recordEvent(event('/devices/virtual/net/lo', 5), { rules: [ruleFromLabel('a (/r/a.yaml:1:3)')] });
    writer.flush();
    expect(count(db, 'rules')).toBe(3);
    db.close();
  });

  it('reads a version 7 file as it is when opened read-only (an older daemon still writes it)', () => {
    const path = join(dir, 'v7-readonly.db');
    writeVersion7(path);
    const db = openHistoryDb(path, { readonly: true });
    expect([...queryEvents(db, {})].map((r) => r.rules)[1]).toEqual(['a (/r/a.yaml:1:3)', 'b (/r/b.yaml:2:3)']);
    expect([...queryEvents(db, { rules: ['odd*'] })].map((r) => r.id)).toEqual([4]);
    expect([...queryEvents(db, { rules: ['b'] })].map((r) => r.id)).toEqual([1, 2, 3]);
    expect([...iterateProcessed(db, 0, 4)].map((r) => r.rules.length)).toEqual([2, 2, 2, 1]);
    db.close();
  });
});
