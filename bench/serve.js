#!/usr/bin/env node
// `hotplugd serve` figures:
//  - server time of its API at N history rows (default 1,000,000, the same history as
//    bench/history.js): the device list, a search, one device's page (its timeline and
//    sessions), the newest events, the rates chart; from request to the last byte, over its
//    unix socket, medians and maxima of 20;
//  - live latency: a `change` written to lo's uevent file in a network namespace → the event
//    read from /api/stream (the daemon's subscription through serve), p50/p99 of 100;
//  - the size of the shipped page (dist/web), raw and gzipped.
// Usage: node bench/serve.js [--events 1000000]
import { readdirSync, readFileSync, rmSync, mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { openHistoryDb } from '../dist/history/db.js';
import { fillHistory } from './lib/history-fixture.js';
import { printAndSave } from './lib/report.js';
import { CLI, REPO, lines, percentile, requireRoot, round, sleep, withScope } from './lib/system.js';

function get(socketPath, path) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const req = request({ socketPath, path }, (res) => {
      let bytes = 0;
      res.on('data', (chunk) => (bytes += chunk.length));
      res.once('end', () => (res.statusCode === 200 ? resolve({ ms: Number(process.hrtime.bigint() - started) / 1e6, bytes }) : reject(new Error(`${path}: HTTP ${res.statusCode}`))));
    });
    req.once('error', reject);
    req.end();
  });
}

async function timed(socket, path, runs = 20) {
  await get(socket, path);
  const samples = [];
  for (let r = 0; r < runs; r++) samples.push((await get(socket, path)).ms);
  samples.sort((a, b) => a - b);
  return { medianMs: round(samples[Math.floor(runs / 2)], 2), maxMs: round(samples[runs - 1], 2) };
}

async function serverTimes(events) {
  const dir = mkdtempSync(join(tmpdir(), 'hotplugd-bench-serve-'));
  try {
    const path = join(dir, 'history.db');
    const db = openHistoryDb(path);
    fillHistory(db, events);
    db.pragma('wal_checkpoint(TRUNCATE)');
    const busiest = db.prepare("SELECT id FROM devices WHERE key LIKE 'usb:%' ORDER BY id LIMIT 1 OFFSET 42").get().id;
    db.close();
    return await withScope('serve', async (scope) => {
      const socket = join(scope.dir, 'serve.sock');
      const serve = scope.spawn(process.execPath, [CLI, 'serve', '--listen', `unix:${socket}`, '--db', path, '--control', join(scope.dir, 'none.sock')]);
      await lines(serve, serve.stderr).waitFor((l) => l.includes('Serving the history'), 20_000, 'serve');
      return {
        'device list (/api/devices, 200 newest)': await timed(socket, '/api/devices'),
        'device search (/api/devices?q=SERIAL42)': await timed(socket, '/api/devices?q=SERIAL42'),
        "one device's page (/api/devices/ID: timeline of 100, sessions)": await timed(socket, `/api/devices/${busiest}`),
        'newest events (/api/events?limit=100)': await timed(socket, '/api/events?limit=100'),
        'rates chart, 24 h (/api/rates)': await timed(socket, '/api/rates'),
        'rates chart, 30 days (/api/rates?since=30d)': await timed(socket, '/api/rates?since=30d'),
      };
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function liveLatency(samples) {
  return withScope('servelive', async (scope) => {
    scope.run('ip', ['link', 'set', 'lo', 'up']);
    const db = join(scope.dir, 'h.db');
    const control = join(scope.dir, 'c.sock');
    const daemon = scope.spawn(process.execPath, [CLI, 'daemon', '--db', db, '--control', control, '--no-coldplug', '--no-watch', '--no-links', '--rules-dir', join(scope.dir, 'none'), '--dev', join(scope.dir, 'dev'), '--log-format', 'json']);
    daemon.stdout.resume();
    await lines(daemon, daemon.stderr).waitFor((l) => l.includes('"hotplugd started"'), 30_000, 'the daemon');
    const socket = join(scope.dir, 'serve.sock');
    const serve = scope.spawn(process.execPath, [CLI, 'serve', '--listen', `unix:${socket}`, '--db', db, '--control', control]);
    await lines(serve, serve.stderr).waitFor((l) => l.includes('Serving the history'), 20_000, 'serve');
    let arrived;
    const stream = request({ socketPath: socket, path: '/api/stream' }, (res) => res.setEncoding('utf8').on('data', (chunk) => chunk.includes('\ndata: ') && arrived?.()));
    stream.end();
    await sleep(500);
    // The writer runs in the namespace: one process, a write each time it is told to.
    const writer = scope.spawn(process.execPath, ['-e', "const fs=require('fs');process.stdin.on('data',()=>{fs.writeFileSync('/sys/class/net/lo/uevent','change');process.stdout.write('w')})"], { stdio: ['pipe', 'pipe', 'ignore'] });
    const results = [];
    for (let i = 0; i < samples; i++) {
      const got = new Promise((resolve) => (arrived = resolve));
      const wrote = new Promise((resolve) => writer.stdout.once('data', resolve));
      const t = process.hrtime.bigint();
      writer.stdin.write('x');
      await wrote;
      await got;
      results.push(Number(process.hrtime.bigint() - t) / 1e6);
      await sleep(20);
    }
    stream.destroy();
    results.sort((a, b) => a - b);
    return { p50Ms: round(percentile(results, 0.5), 2), p99Ms: round(percentile(results, 0.99), 2) };
  });
}

function assetSizes() {
  const dir = join(REPO, 'dist', 'web');
  return Object.fromEntries(readdirSync(dir).map((f) => {
    const body = readFileSync(join(dir, f));
    return [f, { KiB: round(body.length / 1024, 1), gzipKiB: round(gzipSync(body).length / 1024, 1) }];
  }));
}

export async function runServe(events) {
  const times = await serverTimes(events);
  const live = await liveLatency(100);
  const assets = assetSizes();
  const total = Object.values(assets).reduce((sum, a) => ({ KiB: sum.KiB + a.KiB, gzipKiB: sum.gzipKiB + a.gzipKiB }), { KiB: 0, gzipKiB: 0 });
  const markdown = `## hotplugd serve

\`node bench/serve.js --events ${events}\`. Server time (request → last byte, over its unix socket) at ${events.toLocaleString('en')} history rows, median and max of 20:

| request | median | max |
|---|---|---|
${Object.entries(times).map(([k, v]) => `| ${k} | ${v.medianMs} ms | ${v.maxMs} ms |`).join('\n')}

Live: a uevent written in a network namespace → its event read from \`/api/stream\`: p50 ${live.p50Ms} ms, p99 ${live.p99Ms} ms (100 events).

The page as shipped (dist/web): ${Object.entries(assets).map(([f, a]) => `${f} ${a.KiB} KiB (${a.gzipKiB} gzipped)`).join(', ')}; ${round(total.KiB, 1)} KiB in all, ${round(total.gzipKiB, 1)} KiB gzipped.`;
  return { markdown, json: { events, times, live, assets } };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { events: { type: 'string', default: '1000000' } } });
  requireRoot();
  printAndSave('serve', await runServe(Number(values.events)));
}
