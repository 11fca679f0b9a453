#!/usr/bin/env node
// Fleet forwarding over a real Mosquitto (non-persistent) in a network namespace:
//  - forward rate: a board records a storm of N `change` events on lo and forwards them: N
//    over the time from the first write until the collector has them all;
//  - backlog drain: the broker is down while the board records B events; it comes back while
//    a live storm of L more goes on (5,000/s): the time from its restart until the collector
//    has the backlog, and until it has everything;
//  - the RSS cost of forwarding: peak RSS of the forwarding board beside a board in the same
//    namespace that records the same events without forwarding.
// Usage: node bench/fleet.js [--events 20000] [--backlog 100000] [--live 10000] [--rounds 2]
//        [--cli dist/cli/main.js: the boards' build, to compare two]
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { writeUevents } from './lib/daemons.js';
import { CLI, REPO, UNIT_ENV, UNIT_NODE_ARGS, lines, median, peakRssMiB, requireRoot, round, sleep, withScope } from './lib/system.js';
import { printAndSave } from './lib/report.js';
import { startBroker } from './lib/broker.js';

function count(path, sql, ...params) {
  try {
    const db = new Database(path, { readonly: true });
    try {
      return db.prepare(sql).get(...params).n;
    } finally {
      db.close();
    }
  } catch {
    return 0;
  }
}

async function until(check, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
  return process.hrtime.bigint();
}

async function startBoard(scope, name, url, cli) {
  const dir = join(scope.dir, name);
  mkdirSync(dir, { recursive: true });
  // As the systemd unit runs it (its node flags and environment), as a board would.
  const child = scope.spawn(process.execPath, [...UNIT_NODE_ARGS, cli, 'daemon', '--db', join(dir, 'h.db'), '--control', join(dir, 'c.sock'), '--no-coldplug', '--no-watch', '--no-links',
    '--rules-dir', join(scope.dir, 'none'), '--dev', join(dir, 'dev'), '--log-format', 'json', ...(url ? ['--forward', url, '--board', name] : [])], { env: { ...process.env, ...UNIT_ENV } });
  child.stdout.resume();
  await lines(child, child.stderr).waitFor((l) => l.includes('"hotplugd started"'), 30_000, `${name} to start`);
  return { child, db: join(dir, 'h.db') };
}

async function once(sizes) {
  return withScope('fleet', async (scope) => {
    scope.run('ip', ['link', 'set', 'lo', 'up']);
    const port = 20000 + Math.floor(Math.random() * 1000);
    const url = `mqtt://127.0.0.1:${port}`;
    let broker = await startBroker(scope, port);
    const fleet = join(scope.dir, 'fleet.db');
    const collector = scope.spawn(process.execPath, [CLI, 'collect', '--broker', url, '--db', fleet, '--client-id', 'bench', '--log-level', 'warn']);
    collector.stdout.resume();
    collector.stderr.resume();
    const board = await startBoard(scope, 'b1', url, sizes.cli ?? CLI);
    const plain = await startBoard(scope, 'plain', undefined, sizes.cli ?? CLI);
    await sleep(1000);
    const collected = (upTo = Number.MAX_SAFE_INTEGER) => count(fleet, "SELECT count(*) AS n FROM fleet_events WHERE board = 'b1' AND id <= ?", upTo);
    const recorded = () => count(board.db, 'SELECT count(*) AS n FROM events');

    const storm = writeUevents(scope, { count: sizes.events, uuid: randomUUID() });
    const stormDone = await until(() => collected() >= sizes.events, 300_000, 'the storm collected');
    const stormRss = { forwarding: peakRssMiB(board.child.pid), plain: peakRssMiB(plain.child.pid) };

    broker.kill('SIGKILL');
    await new Promise((resolve) => broker.once('exit', resolve));
    writeUevents(scope, { count: sizes.backlog, uuid: randomUUID() });
    const backlogTop = sizes.events + sizes.backlog;
    await until(() => recorded() >= backlogTop, 300_000, 'the backlog recorded');
    broker = await startBroker(scope, port);
    const restarted = process.hrtime.bigint();
    const live = spawn('ip', ['netns', 'exec', scope.netns, process.execPath, join(REPO, 'bench', 'lib', 'write-uevents.js'), '--count', String(sizes.live), '--uuid', randomUUID(), '--rate', '5000'], { stdio: 'ignore' });
    const backlogDone = await until(() => collected(backlogTop) >= backlogTop, 600_000, 'the backlog collected');
    await new Promise((resolve) => (live.exitCode !== null ? resolve() : live.once('exit', resolve)));
    const allDone = await until(() => collected() >= backlogTop + sizes.live, 600_000, 'everything collected');
    // The peak over the whole run: the storm, the backlog recorded, and sent while live events come.
    const rss = { forwarding: peakRssMiB(board.child.pid), plain: peakRssMiB(plain.child.pid) };
    return {
      events: sizes.events, backlog: sizes.backlog, live: sizes.live,
      forwardEventsPerSecond: Math.round(sizes.events / (Number(stormDone - storm.startNs) / 1e9)),
      backlogDrainSeconds: round(Number(backlogDone - restarted) / 1e9, 2),
      allCollectedSeconds: round(Number(allDone - restarted) / 1e9, 2),
      stormPeakRssForwardingMiB: round(stormRss.forwarding, 1),
      stormPeakRssPlainMiB: round(stormRss.plain, 1),
      peakRssForwardingMiB: round(rss.forwarding, 1),
      peakRssPlainMiB: round(rss.plain, 1),
      peakRssDeltaMiB: round(rss.forwarding - rss.plain, 1),
    };
  });
}

export async function runFleet(rounds, sizes) {
  const runs = [];
  for (let r = 0; r < rounds; r++) runs.push(await once(sizes));
  const m = (key) => median(runs.map((x) => x[key]));
  const s = Object.fromEntries(Object.keys(runs[0]).map((key) => [key, m(key)]));
  const markdown = `## Fleet forwarding (one board, Mosquitto without persistence, one SQLite collector)

\`node bench/fleet.js --events ${sizes.events} --backlog ${sizes.backlog} --live ${sizes.live} --rounds ${rounds}\`, medians:

| figure | value |
|---|---|
| events/s one board forwards (a storm of ${sizes.events}: first write → all collected) | ${s.forwardEventsPerSecond} |
| a backlog of ${sizes.backlog} after an outage, a live storm of ${sizes.live} at 5,000/s meanwhile: broker back → backlog collected | ${s.backlogDrainSeconds} s |
| ... → everything collected | ${s.allCollectedSeconds} s |
| peak RSS after the storm: the forwarding board / a board beside it that does not forward | ${s.stormPeakRssForwardingMiB} / ${s.stormPeakRssPlainMiB} MiB |
| peak RSS over the whole run (storm, backlog, live): forwarding / not forwarding (difference) | ${s.peakRssForwardingMiB} / ${s.peakRssPlainMiB} MiB (${s.peakRssDeltaMiB}; per run ${runs.map((x) => x.peakRssDeltaMiB).join(', ')}) |`;
  return { markdown, json: { runs, summary: s } };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { events: { type: 'string', default: '20000' }, backlog: { type: 'string', default: '100000' }, live: { type: 'string', default: '10000' }, rounds: { type: 'string', default: '2' }, cli: { type: 'string', default: CLI } } });
  requireRoot();
  printAndSave('fleet', await runFleet(Number(values.rounds), { events: Number(values.events), backlog: Number(values.backlog), live: Number(values.live), cli: values.cli }));
}
