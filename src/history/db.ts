// Opening the history database: WAL, pragmas, and migrations by PRAGMA user_version.
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { HotplugError } from '../errors.js';
import { backfillDevices } from './backfill.js';
import { migrateRuleMatches } from './rule-sets.js';

export type HistoryDb = Database.Database;

/** Each entry upgrades the schema by one version; never edit one that has shipped. */
const MIGRATIONS: readonly (string | ((db: HistoryDb) => void))[] = [
  `CREATE TABLE events (
     id          INTEGER PRIMARY KEY,
     seqnum      INTEGER,
     action      TEXT NOT NULL,
     devpath     TEXT NOT NULL,
     subsystem   TEXT NOT NULL,
     devtype     TEXT,
     devname     TEXT,
     driver      TEXT,
     major       INTEGER,
     minor       INTEGER,
     source      TEXT NOT NULL,
     received_at INTEGER NOT NULL,
     properties  TEXT NOT NULL
   );
   CREATE INDEX events_devpath ON events (devpath, id);
   CREATE INDEX events_received_at ON events (received_at);
   CREATE TABLE incidents (
     id          INTEGER PRIMARY KEY,
     kind        TEXT NOT NULL,
     at          INTEGER NOT NULL,
     detail      TEXT NOT NULL
   );`,
  `CREATE TABLE actions (
     id          INTEGER PRIMARY KEY,
     event_id    INTEGER NOT NULL,
     kind        TEXT NOT NULL,
     target      TEXT NOT NULL,
     rule        TEXT,
     ok          INTEGER NOT NULL,
     error       TEXT,
     exit_code   INTEGER,
     signal      TEXT,
     timed_out   INTEGER,
     duration_ms REAL NOT NULL,
     argv        TEXT,
     stdout      TEXT,
     stderr      TEXT,
     finished_at INTEGER NOT NULL
   );
   CREATE INDEX actions_event ON actions (event_id);`,
  // What the rules did to the event (JSON: properties they set, symlinks, tags; NULL when
  // no rule matched) and which rules matched it.
  `ALTER TABLE events ADD COLUMN result TEXT;
   CREATE TABLE rule_matches (
     event_id    INTEGER NOT NULL,
     rule        TEXT NOT NULL
   );
   CREATE INDEX rule_matches_event ON rule_matches (event_id);
   CREATE INDEX rule_matches_rule ON rule_matches (rule, event_id);`,
  // Physical devices (a USB device by vendor:product:serial) and the names their events
  // carried, for `--device sdb`. Few indexes on events: each costs every recorded event.
  (db) => {
    db.exec(`CREATE TABLE devices (
       id          INTEGER PRIMARY KEY,
       key         TEXT NOT NULL UNIQUE,
       subsystem   TEXT NOT NULL,
       devpath     TEXT NOT NULL,
       vendor_id   TEXT,
       product_id  TEXT,
       serial      TEXT,
       vendor      TEXT,
       model       TEXT,
       first_seen  INTEGER NOT NULL,
       last_seen   INTEGER NOT NULL
     );
     CREATE INDEX devices_devpath ON devices (devpath);
     CREATE TABLE device_names (
       name        TEXT NOT NULL,
       device_id   INTEGER NOT NULL,
       PRIMARY KEY (name, device_id)
     ) WITHOUT ROWID;
     ALTER TABLE events ADD COLUMN device_id INTEGER;
     DROP INDEX events_received_at;
     DROP INDEX events_devpath;
     CREATE INDEX events_time ON events (received_at, subsystem);
     CREATE INDEX events_device ON events (device_id, id);
     CREATE INDEX incidents_at ON incidents (at);`);
    backfillDevices(db);
  },
  // Forwarding (--forward): per target, the last event, action and incident ids the broker
  // acknowledged. The history is the outbox; these are its cursors.
  `CREATE TABLE forward_cursors (
     target      TEXT PRIMARY KEY,
     event_id    INTEGER NOT NULL,
     action_id   INTEGER NOT NULL,
     incident_id INTEGER NOT NULL
   ) WITHOUT ROWID;`,
  // A device's names by device (the web page lists them beside each device).
  'CREATE INDEX device_names_device ON device_names (device_id, name);',
  // From here on, rows leave ACTION, DEVPATH, SUBSYSTEM and SEQNUM out of their properties
  // JSON (they are in columns; row-properties.ts). Nothing to change in older rows; the
  // version tells an older hotplugd that it cannot read the new ones whole.
  () => {},
  // Matched rules: each rule once, each list of them once, one id per event (rule-sets.ts).
  migrateRuleMatches,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

// better-sqlite3's addon named by its path: left to find it, the `bindings` package looks in a
// dozen places (a system call each: a noticeable part of a start on a board's slow CPU).
let sqliteAddon: { path: string | undefined } | undefined;
function sqliteAddonPath(): string | undefined {
  if (sqliteAddon === undefined) {
    try {
      sqliteAddon = { path: createRequire(import.meta.url).resolve('better-sqlite3/build/Release/better_sqlite3.node') };
    } catch {
      sqliteAddon = { path: undefined }; // built elsewhere: bindings finds it
    }
  }
  return sqliteAddon.path;
}

/**
 * Opens an SQLite file as hotplugd keeps its databases: a clear error naming `what`, a busy
 * timeout, and (for writing) WAL with NORMAL sync — a power cut can lose the last commits,
 * never corrupt the file. `beforeWal` runs on a writable file first (pragmas that must come
 * before WAL).
 */
export function openSqlite(path: string, what: string, options: { readonly?: boolean; beforeWal?: (db: Database.Database) => void } = {}): Database.Database {
  let db: Database.Database;
  try {
    if (!options.readonly) mkdirSync(dirname(path), { recursive: true });
    const nativeBinding = sqliteAddonPath();
    db = new Database(path, { readonly: options.readonly ?? false, fileMustExist: options.readonly ?? false, ...(nativeBinding === undefined ? {} : { nativeBinding }) });
  } catch (error) {
    throw new HotplugError('EDB', `Failed to open the ${what} ${path}: ${(error as Error).message}`, { cause: error });
  }
  db.pragma('busy_timeout = 5000');
  if (options.readonly) return db;
  options.beforeWal?.(db);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  return db;
}

/** Opens (creating if needed) and migrates the history database. */
export function openHistoryDb(path: string, options: { readonly?: boolean } = {}): HistoryDb {
  const db = openSqlite(path, 'history database', {
    readonly: options.readonly,
    // Only a file without tables can switch: then retention can give freed pages back.
    beforeWal: (d) => {
      if ((d.prepare("SELECT count(*) AS n FROM sqlite_master").get() as { n: number }).n === 0) d.pragma('auto_vacuum = INCREMENTAL');
    },
  });
  if (options.readonly) {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new HotplugError('EDBVERSION', `${path} has schema version ${version}; this hotplugd reads up to ${SCHEMA_VERSION}`);
    }
    return db;
  }
  migrate(db, path);
  return db;
}

function migrate(db: HistoryDb, path: string): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    throw new HotplugError('EDBVERSION', `${path} has schema version ${version}; this hotplugd knows up to ${SCHEMA_VERSION}`);
  }
  for (let next = version; next < MIGRATIONS.length; next++) {
    const migration = MIGRATIONS[next]!;
    db.transaction(() => {
      if (typeof migration === 'string') db.exec(migration);
      else migration(db);
      db.pragma(`user_version = ${next + 1}`);
    })();
  }
}
