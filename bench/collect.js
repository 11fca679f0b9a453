#!/usr/bin/env node
// The collector's ingest rate: 10 boards' forwarded records into SQLite and into PostgreSQL.
// The boards are 10 MQTT clients publishing ready-made records (the shape a board forwards:
// an event of ~1 KB with one action, batched as boards batch them) at QoS 1 to a stock Mosquitto while the collector is
// away, so its persistent session holds them all; then the collector starts, and the figure
// is the records over the time from its start until the database holds them all. Each
// message (a batch) is committed before it is acknowledged. PostgreSQL is Debian's, in a temp data
// directory with its defaults (fsync and synchronous_commit on), over a unix socket.
// Backends alternate within each round.
// Usage: node bench/collect.js [--boards 10] [--per-board 3000] [--rounds 3]
// (BENCH_CLI=PATH: the collector from another build; BENCH_BACKENDS=sqlite,postgres: some of them)
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { CLI, REPO, lines, median, ownCpuSeconds, requireRoot, round, sleep, withScope } from './lib/system.js';
import { printAndSave } from './lib/report.js';
import { startBroker } from './lib/broker.js';

export const PG_BIN = (() => {
  const root = '/usr/lib/postgresql';
  const version = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))).sort((a, b) => b - a)[0] : undefined;
  return version && join(root, version, 'bin');
})();

/** A PostgreSQL cluster in a temp dir, run by the postgres user, on a unix socket there only. */
export function startPostgres() {
  const dir = mkdtempSync('/tmp/hotplugd-bench-pg-');
  const id = (flag) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }));
  chownSync(dir, id('-u'), id('-g'));
  const as = (program, args) => execFileSync('runuser', ['-u', 'postgres', '--', join(PG_BIN, program), ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  as('initdb', ['-D', join(dir, 'data'), '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  as('pg_ctl', ['-D', join(dir, 'data'), '-o', `-k ${dir} -c listen_addresses=''`, '-l', join(dir, 'log'), '-w', 'start']);
  return {
    url: (db) => `postgres://postgres@/${db}?host=${dir}`,
    createdb: (db) => as('createdb', ['-h', dir, '-U', 'postgres', db]),
    count: (db) => Number(as('psql', ['-h', dir, '-U', 'postgres', '-d', db, '-Atc', 'SELECT count(*) FROM fleet_events']).trim() || 0),
    stop() {
      as('pg_ctl', ['-D', join(dir, 'data'), '-m', 'fast', '-w', 'stop']);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Counts a PostgreSQL fleet database's events over one connection. */
async function postgresWatch(url) {
  const { default: pg } = await import('pg');
  const client = new pg.Client(url);
  await client.connect();
  return { count: async () => Number((await client.query('SELECT count(*) AS n FROM fleet_events')).rows[0].n), close: () => client.end() };
}

export function sqliteCount(path) {
  try {
    const db = new Database(path, { readonly: true });
    try {
      return db.prepare('SELECT count(*) AS n FROM fleet_events').get().n;
    } finally {
      db.close();
    }
  } catch {
    return 0;
  }
}

// Publishes each board's records at QoS 1 in batches cut as boards cut them (250 records or
// 128 KiB: ~110 of these records; one message, one transaction at the collector), so 10
// boards' 3,000 records each are ~280 messages: within a stock Mosquitto's queue of 1,000.
const PUBLISHER = `
const { connect } = require(${JSON.stringify(join(REPO, 'node_modules', 'mqtt'))});
const { record } = require(${JSON.stringify(join(REPO, 'bench', 'lib', 'fleet-record.cjs'))});
const [url, board, count] = [process.argv[1], process.argv[2], Number(process.argv[3])];
const c = connect(url, { clientId: 'bench-' + board });
c.on('connect', async () => {
  const at = Date.now();
  // Cut as the forwarder cuts: at 250 records or 128 KiB.
  let records = [], bytes = 0;
  const send = () => c.publishAsync('hotplugd/' + board + '/events', '{"type":"batch","board":' + JSON.stringify(board) + ',"records":[' + records.join(',') + ']}', { qos: 1 });
  for (let id = 1; id <= count; id++) {
    const json = JSON.stringify(record(board, id, at));
    if (records.length === 250 || (records.length > 0 && bytes + json.length > 128 * 1024)) { await send(); records = []; bytes = 0; }
    records.push(json); bytes += json.length + 1;
  }
  if (records.length) await send();
  await c.endAsync();
});`;

async function once(backend, postgres, sizes, round) {
  return withScope(`collect-${backend}`, async (scope) => {
    scope.run('ip', ['link', 'set', 'lo', 'up']);
    const port = 21000 + Math.floor(Math.random() * 1000);
    const url = `mqtt://127.0.0.1:${port}`;
    const broker = await startBroker(scope, port);
    const dbName = `bench_${backend.replace(/\W/g, '_')}_${round}`;
    const pg = backend.startsWith('postgres');
    if (pg) postgres.createdb(dbName);
    const db = pg ? postgres.url(dbName) : join(scope.dir, 'fleet.db');
    // Watched over one kept connection (a psql per look cost the machine ~40 ms of CPU each time).
    const watch = pg ? await postgresWatch(db) : { count: async () => sqliteCount(db), close: async () => {} };
    // `postgres, 4 sharing`: four collectors in one shared subscription, writing one database.
    const collectors = backend.endsWith('sharing') ? 4 : 1;
    const collect = (i) => {
      const share = collectors > 1 ? ['--share', 'bench'] : [];
      const child = scope.spawn(process.execPath, [...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : []), process.env.BENCH_CLI ?? CLI, 'collect', '--broker', url, '--db', db, '--client-id', `bench-collector-${i}`, ...share, ...(process.env.BENCH_CONNECTIONS ? ['--connections', process.env.BENCH_CONNECTIONS] : [])]);
      child.stdout.resume();
      return { child, log: lines(child, child.stderr) };
    };
    // Once, to leave their sessions (and the tables) on the broker; then away while boards publish.
    for (let i = 0; i < collectors; i++) {
      const first = collect(i);
      await first.log.waitFor((l) => l.includes('Collecting'), 20_000, 'the collector');
      first.child.kill('SIGTERM');
      await new Promise((resolve) => first.child.once('exit', resolve));
    }
    const publishers = Array.from({ length: sizes.boards }, (_, i) => scope.spawn(process.execPath, ['-e', PUBLISHER, url, `board${i + 1}`, String(sizes.perBoard)]));
    await Promise.all(publishers.map((p) => new Promise((resolve) => (p.exitCode !== null ? resolve() : p.once('exit', resolve)))));
    const total = sizes.boards * sizes.perBoard;
    const start = process.hrtime.bigint();
    const running = Array.from({ length: collectors }, (_, i) => collect(i));
    const started = running.map((r) => r.child);
    // When the collector is up (connected to both, subscribed): its start-up is not ingest.
    let connectedAt;
    void Promise.all(running.map((r) => r.log.waitFor((l) => l.includes('Collecting'), 60_000, 'the collector'))).then(() => (connectedAt = process.hrtime.bigint()), () => undefined);
    const deadline = Date.now() + 900_000;
    try {
      for (let n = await watch.count(); n < total; n = await watch.count()) {
        if (Date.now() > deadline) throw new Error(`${backend}: only ${n} of ${total} collected`);
        await sleep(50);
      }
    } finally {
      await watch.close();
    }
    const end = process.hrtime.bigint();
    const seconds = Number(end - start) / 1e9;
    const startupSeconds = connectedAt === undefined ? seconds : Number(connectedAt - start) / 1e9;
    const cpu = started.reduce((sum, child) => sum + ownCpuSeconds(child.pid), 0);
    for (const child of started) child.kill('SIGTERM'); // a clean stop (and, with BENCH_CPU_PROF=DIR, its CPU profile)
    await Promise.all(started.map((child) => new Promise((resolve) => child.once('exit', resolve))));
    return { backend, records: total, seconds: round2(seconds), recordsPerSecond: Math.round(total / seconds), startupSeconds: round2(startupSeconds), connectedRecordsPerSecond: Math.round(total / (seconds - startupSeconds)), collectorCpuSeconds: round2(cpu) };
  });
}

const round2 = (x) => round(x, 2);

export async function runCollect(rounds, sizes) {
  if (!PG_BIN) throw new Error('bench/collect.js needs Debian\'s postgresql (initdb)');
  const postgres = startPostgres();
  const runs = [];
  try {
    for (let r = 0; r < rounds; r++) {
      const backends = process.env.BENCH_BACKENDS ? process.env.BENCH_BACKENDS.split(/,(?=[a-z])/) : ['sqlite', 'postgres', 'postgres, 4 sharing'];
      for (const backend of r % 2 === 0 ? backends : backends.reverse()) runs.push(await once(backend, postgres, sizes, r));
    }
  } finally {
    postgres.stop();
  }
  const rate = (backend) => median(runs.filter((x) => x.backend === backend).map((x) => x.recordsPerSecond));
  const s = { sqliteRecordsPerSecond: rate('sqlite'), postgresRecordsPerSecond: rate('postgres'), postgresSharedRecordsPerSecond: rate('postgres, 4 sharing') };
  const markdown = `## Collector ingest (${sizes.boards} boards, ${sizes.perBoard} records each, waiting in the collector's Mosquitto session)

\`node bench/collect.js --boards ${sizes.boards} --per-board ${sizes.perBoard} --rounds ${rounds}\`, medians, backends alternating; each message (~110 records, 128 KiB) committed before its acknowledgement, stock Mosquitto:

| database | records/s |
|---|---|
| SQLite (WAL, synchronous=NORMAL) | ${s.sqliteRecordsPerSecond} |
| PostgreSQL ${PG_BIN.split('/').at(-2)} (defaults: fsync, synchronous_commit on; unix socket) | ${s.postgresRecordsPerSecond} |
| PostgreSQL, 4 collectors in one shared subscription (\`--share\`) | ${s.postgresSharedRecordsPerSecond} |`;
  return { markdown, json: { runs, summary: s } };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { boards: { type: 'string', default: '10' }, 'per-board': { type: 'string', default: '3000' }, rounds: { type: 'string', default: '3' } } });
  requireRoot();
  printAndSave('collect', await runCollect(Number(values.rounds), { boards: Number(values.boards), perBoard: Number(values['per-board']) }));
}
