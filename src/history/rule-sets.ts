// Which rules matched an event, kept small: each rule once in `rules` (its file, line,
// column, name and text), each distinct list of matched rules once in `rule_sets` (rule ids
// in the order they matched), and the event row names its list (`events.rule_set`). A storm
// of one device's events that match the same 23 rules costs one integer per event, where a
// row per match cost ~4 KB. An unchanged rule keeps its id across reloads and restarts (the
// same file, line, column, name and text), so the history of a rule reads across versions.
import type Database from 'better-sqlite3';
import type { Statement } from 'better-sqlite3';
import type { Rule } from '../rules/model.js';
import { ruleOrigin } from '../rules/plan.js';

// Distinct lists of matched rules are few (kinds of devices × rule set versions); the caches
// are bounded all the same.
const MAX_CACHED_SETS = 10_000;

/** Gives lists of matched rules their rule_sets id, adding rows as needed (inside the writer's transaction). */
export class RuleSetIds {
  #select: { rule: Statement; set: Statement };
  #insert: { rule: Statement; set: Statement };
  #ruleIds = new WeakMap<Rule, number>();
  #setIds = new Map<string, number>();

  constructor(db: Database.Database) {
    this.#select = {
      rule: db.prepare('SELECT id FROM rules WHERE file = ? AND line = ? AND "column" = ? AND name = ? AND text = ?'),
      set: db.prepare('SELECT id FROM rule_sets WHERE rules = ?'),
    };
    this.#insert = {
      rule: db.prepare('INSERT INTO rules (file, line, "column", name, text) VALUES (?, ?, ?, ?, ?)'),
      set: db.prepare('INSERT INTO rule_sets (rules) VALUES (?)'),
    };
  }

  /** The id of this list of matched rules; null for none. */
  idOf(rules: readonly Rule[]): number | null {
    if (rules.length === 0) return null;
    let key = '';
    for (let i = 0; i < rules.length; i++) key += (i === 0 ? '' : ',') + this.#ruleId(rules[i]!);
    let id = this.#setIds.get(key);
    if (id === undefined) {
      const row = this.#select.set.get(key) as { id: number } | undefined;
      id = row?.id ?? Number(this.#insert.set.run(key).lastInsertRowid);
      if (this.#setIds.size >= MAX_CACHED_SETS) this.#setIds.clear();
      this.#setIds.set(key, id);
    }
    return id;
  }

  /** Forget what was looked up (a transaction that added rows was rolled back). */
  forget(): void {
    this.#ruleIds = new WeakMap();
    this.#setIds.clear();
  }

  #ruleId(rule: Rule): number {
    let id = this.#ruleIds.get(rule);
    if (id === undefined) {
      const values = [rule.at.file, rule.at.line, rule.at.column, rule.name, rule.text ?? ''];
      const row = this.#select.rule.get(...values) as { id: number } | undefined;
      id = row?.id ?? Number(this.#insert.rule.run(...values).lastInsertRowid);
      this.#ruleIds.set(rule, id);
    }
    return id;
  }
}

interface RuleRow {
  id: number;
  file: string;
  line: number;
  column: number;
  name: string;
}

// A file an older hotplugd still writes (opened read-only before the daemon was upgraded)
// keeps a row per match in rule_matches: read as it is.
const RULE_SETS_VERSION = 8;
const olderFiles = new WeakMap<Database.Database, boolean>();
function isOlder(db: Database.Database): boolean {
  let older = olderFiles.get(db);
  if (older === undefined) olderFiles.set(db, (older = (db.pragma('user_version', { simple: true }) as number) < RULE_SETS_VERSION));
  return older;
}

/** The labels (`name (file:line:column)`, in match order) of the rules that matched each of these events. */
export function matchedRules(db: Database.Database, events: readonly { id: number; rule_set?: number | null | undefined }[]): Map<number, string[]> {
  const byEvent = new Map<number, string[]>();
  if (isOlder(db)) {
    const rows = db.prepare('SELECT event_id, rule FROM rule_matches WHERE event_id IN (SELECT value FROM json_each(?)) ORDER BY rowid').all(JSON.stringify(events.map((e) => e.id))) as { event_id: number; rule: string }[];
    for (const m of rows) {
      const list = byEvent.get(m.event_id);
      if (list) list.push(m.rule);
      else byEvent.set(m.event_id, [m.rule]);
    }
    return byEvent;
  }
  const sets = ruleSetLabels(db, events.map((e) => e.rule_set));
  for (const e of events) if (e.rule_set != null) byEvent.set(e.id, sets.get(e.rule_set) ?? []);
  return byEvent;
}

/** The labels (`name (file:line:column)`, in match order) of each of these rule sets. */
function ruleSetLabels(db: Database.Database, setIds: Iterable<number | null | undefined>): Map<number, string[]> {
  const wanted = [...new Set([...setIds].filter((id): id is number => typeof id === 'number'))];
  const labels = new Map<number, string[]>();
  if (wanted.length === 0) return labels;
  const sets = db.prepare('SELECT id, rules FROM rule_sets WHERE id IN (SELECT value FROM json_each(?))').all(JSON.stringify(wanted)) as { id: number; rules: string }[];
  const lists = sets.map((s) => ({ id: s.id, rules: s.rules.split(',').map(Number) }));
  const ruleIds = [...new Set(lists.flatMap((l) => l.rules))];
  const rules = new Map<number, string>();
  for (const r of db.prepare('SELECT id, file, line, "column", name FROM rules WHERE id IN (SELECT value FROM json_each(?))').all(JSON.stringify(ruleIds)) as RuleRow[]) {
    // A label an older version recorded that names no place is kept as it was.
    rules.set(r.id, r.file === '' ? r.name : ruleOrigin(r.name, { file: r.file, line: r.line, column: r.column }));
  }
  for (const l of lists) labels.set(l.id, l.rules.map((id) => rules.get(id) ?? `rule ${id}`));
  return labels;
}

/**
 * SQL for "a rule named like one of `names` matched the event" (`history --rule`): a rule's
 * name (YAML's `name:`, `FILE:LINE` for udev and mdev rules) or its label, each a glob.
 * The rule sets that hold such a rule are found first (few rows), then the events by the
 * index on rule_set.
 */
export function ruleFilter(db: Database.Database, names: readonly string[]): { sql: string; params: string[] } {
  if (isOlder(db)) {
    const test = names.map(() => "(rule GLOB ? OR substr(rule, 1, instr(rule, ' (') - 1) GLOB ?)").join(' OR ');
    return { sql: `e.id IN (SELECT event_id FROM rule_matches WHERE ${test})`, params: names.flatMap((n) => [n, n]) };
  }
  const test = names.map(() => '(r.name GLOB ? OR r.name || \' (\' || r.file || \':\' || r.line || \':\' || r."column" || \')\' GLOB ?)').join(' OR ');
  const sql = `e.rule_set IN (SELECT s.id FROM rule_sets s WHERE EXISTS (SELECT 1 FROM json_each('[' || s.rules || ']') j JOIN rules r ON r.id = j.value WHERE ${test}))`;
  return { sql, params: names.flatMap((n) => [n, n]) };
}

/**
 * Schema version 8: `rule_matches` (a row per matched rule per event, with the rule's label)
 * becomes rules, rule sets and `events.rule_set`, in place, and a view of that name gives
 * the same rows. Older rows keep their labels: the rule's text was not recorded then (empty).
 */
export function migrateRuleMatches(db: Database.Database): void {
  db.exec(`CREATE TABLE rules (
     id          INTEGER PRIMARY KEY,
     file        TEXT NOT NULL,
     line        INTEGER NOT NULL,
     "column"    INTEGER NOT NULL,
     name        TEXT NOT NULL,
     text        TEXT NOT NULL,
     UNIQUE (file, line, "column", name, text)
   );
   CREATE TABLE rule_sets (
     id          INTEGER PRIMARY KEY,
     rules       TEXT NOT NULL UNIQUE
   );
   ALTER TABLE events ADD COLUMN rule_set INTEGER;
   CREATE INDEX events_rule_set ON events (rule_set, id) WHERE rule_set IS NOT NULL;
   CREATE TEMP TABLE old_labels (label TEXT PRIMARY KEY, id INTEGER NOT NULL);`);
  const insertRule = db.prepare('INSERT OR IGNORE INTO rules (file, line, "column", name, text) VALUES (?, ?, ?, ?, \'\')');
  const ruleId = db.prepare('SELECT id FROM rules WHERE file = ? AND line = ? AND "column" = ? AND name = ? AND text = \'\'');
  const keep = db.prepare('INSERT INTO old_labels (label, id) VALUES (?, ?)');
  for (const { rule: label } of db.prepare('SELECT DISTINCT rule FROM rule_matches').all() as { rule: string }[]) {
    // `name (file:line:column)`; anything else is kept whole as a name.
    const m = /^(.*) \((.*):(\d+):(\d+)\)$/s.exec(label);
    const values = m ? [m[2]!, Number(m[3]), Number(m[4]), m[1]!] : ['', 0, 0, label];
    insertRule.run(...values);
    keep.run(label, (ruleId.get(...values) as { id: number }).id);
  }
  db.exec(`CREATE TEMP TABLE old_sets (event_id INTEGER PRIMARY KEY, rules TEXT NOT NULL);
   INSERT INTO old_sets SELECT m.event_id, group_concat(l.id, ',' ORDER BY m.rowid) FROM rule_matches m JOIN old_labels l ON l.label = m.rule GROUP BY m.event_id;
   INSERT OR IGNORE INTO rule_sets (rules) SELECT DISTINCT rules FROM old_sets;
   UPDATE events SET rule_set = (SELECT s.id FROM old_sets o JOIN rule_sets s ON s.rules = o.rules WHERE o.event_id = events.id)
     WHERE id IN (SELECT event_id FROM old_sets);
   DROP TABLE old_sets;
   DROP TABLE old_labels;
   DROP TABLE rule_matches;
   -- The old table's rows, for queries written for it: a rule per matched rule per event, in match order.
   CREATE VIEW rule_matches (event_id, position, rule, rule_id) AS
     SELECT e.id, j.key, CASE r.file WHEN '' THEN r.name ELSE r.name || ' (' || r.file || ':' || r.line || ':' || r."column" || ')' END, r.id
     FROM events e JOIN rule_sets s ON s.id = e.rule_set JOIN json_each('[' || s.rules || ']') j JOIN rules r ON r.id = j.value;`);
}
