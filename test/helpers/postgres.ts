// A real PostgreSQL server (Debian's package) for tests: a fresh cluster in a temp data
// directory (initdb, as the postgres user: it refuses root), listening on a unix socket in
// that directory only, stopped and deleted afterwards.
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/** The newest installed server's bin directory, if any. */
export const POSTGRES_BIN = (() => {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(root, versions[0], 'bin');
})();

const idOf = (flag: '-u' | '-g') => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());

export class Postgres {
  readonly dir: string;
  /** postgres://postgres@/fleet?host=DIR: the database `fleet` over the unix socket. */
  readonly url: string;
  readonly database: string;
  #started = false;

  constructor(database = 'fleet') {
    this.dir = mkdtempSync('/tmp/hotplugd-pg-');
    chownSync(this.dir, idOf('-u'), idOf('-g'));
    this.url = `postgres://postgres@/${database}?host=${this.dir}`;
    this.database = database;
  }

  #asPostgres(program: string, args: string[]): string {
    return execFileSync('runuser', ['-u', 'postgres', '--', join(POSTGRES_BIN!, program), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
  }

  start(): void {
    const data = join(this.dir, 'data');
    if (!existsSync(data)) this.#asPostgres('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
    this.#asPostgres('pg_ctl', ['-D', data, '-o', `-k ${this.dir} -c listen_addresses=''`, '-l', join(this.dir, 'log'), '-w', 'start']);
    this.#started = true;
    if (!this.#asPostgres('psql', ['-h', this.dir, '-U', 'postgres', '-Atc', `SELECT 1 FROM pg_database WHERE datname = '${this.database}'`]).trim()) {
      this.#asPostgres('createdb', ['-h', this.dir, '-U', 'postgres', this.database]);
    }
  }

  /** An immediate stop: the server goes as in a crash (it recovers from its WAL at the next start). */
  stop(mode: 'immediate' | 'fast' = 'immediate'): void {
    if (!this.#started) return;
    this.#asPostgres('pg_ctl', ['-D', join(this.dir, 'data'), '-m', mode, '-w', 'stop']);
    this.#started = false;
  }

  /** Runs SQL with psql; the rows as lines of |-separated fields. */
  query(sql: string): string[] {
    const out = this.#asPostgres('psql', ['-h', this.dir, '-U', 'postgres', '-d', this.database, '-v', 'ON_ERROR_STOP=1', '-Atc', sql]).trim();
    return out === '' ? [] : out.split('\n');
  }

  remove(): void {
    try {
      this.stop();
    } catch {
      // already stopped
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
