#!/usr/bin/env node
// A fleet's load on one broker and its collectors: 1,000 boards (the real Forwarder, many to
// a process: bench/lib/fleet-boards.mjs) forwarding 1,000 records each through a stock
// Mosquitto (its defaults: max_queued_messages 1,000, max_inflight_messages 20) into one
// collector (SQLite, PostgreSQL) or four sharing a subscription (PostgreSQL). The figure is the
// time from the boards' start until every board has every record confirmed by the collector;
// then the database is checked: every record once. Collector CPU and peak RSS, the broker's
// peak RSS, and the boards' resends are reported.
// Usage: node bench/fleet-load.js [--boards 1000] [--records 1000] [--processes 4] [--backends sqlite,postgres,postgres4]
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CLI, REPO, exited, lines, ownCpuSeconds, peakRssMiB, requireRoot, round, sleep, withScope } from './lib/system.js';
import { printAndSave } from './lib/report.js';
import { startBroker } from './lib/broker.js';
import { PG_BIN, sqliteCount, startPostgres } from './collect.js';

async function once(backend, postgres, o) {
  return withScope('fleetload', async (scope) => {
    scope.run('ip', ['link', 'set', 'lo', 'up']);
    const port = 22000 + Math.floor(Math.random() * 1000);
    const url = `mqtt://127.0.0.1:${port}`;
    const broker = await startBroker(scope, port);
    const pg = backend.startsWith('postgres');
    const dbName = `load_${backend}_${Date.now()}`;
    if (pg) postgres.createdb(dbName);
    const db = pg ? postgres.url(dbName) : join(scope.dir, 'fleet.db');
    const count = pg ? () => postgres.count(dbName) : () => sqliteCount(db);
    const collectors = Array.from({ length: backend === 'postgres4' ? 4 : 1 }, (_, i) => {
      const share = backend === 'postgres4' ? ['--share', 'load'] : [];
      const child = scope.spawn(process.execPath, [CLI, 'collect', '--broker', url, '--db', db, '--client-id', `load-collector-${i}`, ...share]);
      child.stdout.resume();
      return { child, log: lines(child, child.stderr) };
    });
    for (const c of collectors) await c.log.waitFor((l) => l.includes('Collecting'), 20_000, 'the collector');
    const total = o.boards * o.records;
    const per = Math.ceil(o.boards / o.processes);
    const start = Date.now();
    const sims = [];
    for (let first = 1; first <= o.boards; first += per) {
      const child = scope.spawn(process.execPath, [join(REPO, 'bench', 'lib', 'fleet-boards.mjs'), url, String(first), String(Math.min(per, o.boards - first + 1)), String(o.records)]);
      child.stderr.resume();
      sims.push({ child, out: lines(child) });
    }
    const reports = await Promise.all(sims.map((s) => s.out.waitFor((l) => l.startsWith('{'), 1_800_000, 'the boards').then((l) => JSON.parse(l))));
    const seconds = (Date.now() - start) / 1000;
    await Promise.all(sims.map((s) => exited(s.child)));
    await sleep(300);
    const stored = count();
    const cpu = collectors.reduce((n, c) => n + ownCpuSeconds(c.child.pid), 0);
    const rss = Math.round(Math.max(...collectors.map((c) => peakRssMiB(c.child.pid))));
    const brokerRss = Math.round(peakRssMiB(broker.pid));
    for (const c of collectors) c.child.kill('SIGTERM');
    const stoppedIn = await Promise.race([Promise.all(collectors.map((c) => exited(c.child))).then(() => true), sleep(20_000).then(() => false)]);
    if (!stoppedIn) throw new Error(`a collector did not stop within 20 s of SIGTERM:\n${collectors.map((c) => c.log.seen.slice(-5).join('\n')).join('\n')}`);
    return {
      backend, boards: o.boards, records: total, stored, exactlyOnce: stored === total, seconds: round(seconds, 1), recordsPerSecond: Math.round(total / seconds),
      collectorCpuSeconds: round(cpu, 1), collectorPeakRssMiB: rss, brokerPeakRssMiB: brokerRss,
      resends: reports.reduce((n, r) => n + r.resends, 0), boardProcessPeakRssMiB: Math.max(...reports.map((r) => r.rssMiB)),
    };
  });
}

export async function runFleetLoad(o) {
  const postgres = o.backends.some((b) => b.startsWith('postgres')) ? startPostgres() : undefined;
  const runs = [];
  try {
    for (const backend of o.backends) runs.push(await once(backend, postgres, o));
  } finally {
    postgres?.stop();
  }
  const label = { sqlite: 'one collector, SQLite', postgres: `one collector, PostgreSQL ${PG_BIN?.split('/').at(-2) ?? ''}`, postgres4: 'four collectors sharing a subscription, PostgreSQL' };
  const markdown = `## A fleet's load: ${o.boards} boards × ${o.records} records, stock Mosquitto

\`node bench/fleet-load.js --boards ${o.boards} --records ${o.records} --processes ${o.processes}\`: the real Forwarder (window, batches, collector acks), ${o.processes} processes of boards; boards' start → every record confirmed; then the database checked.

| collectors | records | stored once | records/s | collector CPU s | collector peak RSS MiB | broker peak RSS MiB | board resends |
|---|---:|---|---:|---:|---:|---:|---:|
${runs.map((r) => `| ${label[r.backend]} | ${r.records} | ${r.exactlyOnce ? 'yes' : `**no: ${r.stored}**`} | ${r.recordsPerSecond} | ${r.collectorCpuSeconds} | ${r.collectorPeakRssMiB} | ${r.brokerPeakRssMiB} | ${r.resends} |`).join('\n')}`;
  return { markdown, json: { runs } };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  requireRoot();
  const { values } = parseArgs({ options: { boards: { type: 'string', default: '1000' }, records: { type: 'string', default: '1000' }, processes: { type: 'string', default: '4' }, backends: { type: 'string', default: 'sqlite,postgres,postgres4' } } });
  printAndSave('fleet-load', await runFleetLoad({ boards: Number(values.boards), records: Number(values.records), processes: Number(values.processes), backends: values.backends.split(',') }));
}
