import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { postgresLocation } from './store-postgres.js';
import { eventActions, globToRegex } from './records.js';

describe('globToRegex (PostgreSQL `~` for what SQLite does with GLOB)', () => {
  it('matches exactly what SQLite GLOB matches', () => {
    const db = new Database(':memory:');
    const glob = db.prepare('SELECT ? GLOB ? AS m');
    const names = ['usb', 'usb_device', 'usbmisc', 'block', 'net', 'tty', 'a.b', 'a+b', 'a(b)', 'x]y', 'x^y', 'x$', 'a\\b', '', 'USB'];
    const patterns = ['usb*', 'usb', '*', '?sb', 'us?', '[bn]*', '[!bn]*', '[^bn]*', '[a-c]*', 'a.b', 'a+b', 'a(b)', 'x]y', 'x^y', 'x$', 'a\\b', '[]x]*', '*[', 'u[sx]b*'];
    for (const pattern of patterns) {
      const regex = new RegExp(globToRegex(pattern));
      for (const name of names) expect([pattern, name, regex.test(name)]).toEqual([pattern, name, (glob.get(name, pattern) as { m: number }).m === 1]);
    }
    db.close();
  });
});

describe('postgresLocation', () => {
  it('leaves the password out of what is logged, with or without a host', () => {
    expect(postgresLocation('postgres://hotplugd:s3cr%40t@db.example:5432/fleet')).toBe('postgres://hotplugd@db.example:5432/fleet');
    expect(postgresLocation('postgresql://u:p@/fleet?host=/run/postgresql')).toBe('postgresql://u@/fleet?host=/run/postgresql');
    expect(postgresLocation('postgres://postgres@/fleet?host=/tmp/x')).toBe('postgres://postgres@/fleet?host=/tmp/x');
  });
});

describe('eventActions', () => {
  it('keeps each storable action once: an id, chained below it', () => {
    const actions = eventActions({ actions: [{ id: 2, after: 1 }, { id: 2, after: 1 }, { id: 3, after: 3 }, { id: 0, after: 0 }, null, 'x', { id: 4, after: 2 }] });
    expect(actions.map((a) => a.id)).toEqual([2, 4]);
  });
});
