#!/usr/bin/env node
// History benchmark: N events (default 1,000,000) recorded through the daemon's own path
// (HistoryWriter: batched commits, device identities, matched rules, actions) into a real
// SQLite file, then the figures an operator cares about: rows/s, bytes per event on disk,
// and query latencies at that size (a device's timeline, the last 24 h by subsystem),
// `history --rule`, plus the cost of one retention step. Events are the recorded kernel events of
// ../shared/fixtures/uevents, spread over 30 days and over 1,000 USB devices.
// Prints a Markdown table and writes bench/results/history.json.
// Usage: npm run bench:history [-- --events N]
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openHistoryDb } from '../dist/history/db.js';
import { queryEvents, resolveDevice } from '../dist/history/query.js';
import { Retention } from '../dist/history/retention.js';
import { DEVICES, eventTemplates, fillHistory } from './lib/history-fixture.js';
import { printAndSave } from './lib/report.js';

const { values } = parseArgs({ options: { events: { type: 'string', default: '1000000' } } });
const EVENTS = Number(values.events);

const dir = mkdtempSync(join(tmpdir(), 'hotplugd-bench-history-'));
const path = join(dir, 'history.db');
const result = { events: EVENTS, devices: DEVICES, templates: eventTemplates().length };
try {
  const db = openHistoryDb(path);
  const end = Date.now();
  const seconds = fillHistory(db, EVENTS, end);
  db.pragma('wal_checkpoint(TRUNCATE)');
  result.recordSeconds = Number(seconds.toFixed(2));
  result.rowsPerSecond = Math.round(EVENTS / seconds);
  result.bytesPerEvent = Math.round(statSync(path).size / EVENTS);
  result.fileMiB = Number((statSync(path).size / 1048576).toFixed(1));

  const time = (fn, runs = 20) => {
    fn();
    const samples = [];
    for (let r = 0; r < runs; r++) {
      const t = process.hrtime.bigint();
      fn();
      samples.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    samples.sort((a, b) => a - b);
    return { medianMs: Number(samples[Math.floor(runs / 2)].toFixed(2)), maxMs: Number(samples[runs - 1].toFixed(2)) };
  };
  const reader = openHistoryDb(path, { readonly: true });
  const now = end;
  result.queries = {
    'device timeline (--device 0781:5583:SERIAL42 --limit 100)': time(() => {
      const ids = resolveDevice(reader, '0781:5583:SERIAL42').map((d) => d.id);
      return [...queryEvents(reader, { deviceIds: ids }, { limit: 100 })].length;
    }),
    'device by kernel name (--device sdb --limit 100)': time(() => {
      const ids = resolveDevice(reader, 'sdb').map((d) => d.id);
      return [...queryEvents(reader, { deviceIds: ids }, { limit: 100 })].length;
    }),
    'last 24 h by subsystem (counts)': time(() =>
      reader.prepare('SELECT subsystem, count(*) AS n FROM events WHERE received_at >= ? GROUP BY subsystem').all(now - 86_400_000)),
    'last 24 h of one subsystem (--since 24h --subsystem block --limit 100)': time(() =>
      [...queryEvents(reader, { since: now - 86_400_000, subsystems: ['block'] }, { limit: 100 })].length),
    // A rule every event matched, one every third event matched, and one that matched 100 of the events.
    'a rule every event matched (--rule 50-debian.rules:4 --limit 100)': time(() => [...queryEvents(reader, { rules: ['50-debian.rules:4'] }, { limit: 100 })].length),
    'a rule\'s events (--rule usb-serial --limit 100)': time(() => [...queryEvents(reader, { rules: ['usb-serial'] }, { limit: 100 })].length),
    'a rare rule\'s events (--rule rare --limit 100)': time(() => [...queryEvents(reader, { rules: ['rare'] }, { limit: 100 })].length),
    'a rule\'s events by glob of its label (--rule \'*50-usb.yaml:*\' --limit 100)': time(() => [...queryEvents(reader, { rules: ['*50-usb.yaml:*'] }, { limit: 100 })].length),
  };
  reader.close();
  const retention = new Retention(db, { maxRows: EVENTS - 10_000 });
  result.retentionStep = time(() => retention.step(), 5);
  db.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const rows = [
  `| recorded | ${result.rowsPerSecond.toLocaleString('en')} events/s (${result.recordSeconds} s) |`,
  `| on disk | ${result.bytesPerEvent} bytes/event (${result.fileMiB} MiB) |`,
  ...Object.entries(result.queries).map(([name, t]) => `| ${name} | median ${t.medianMs} ms, max ${t.maxMs} ms |`),
  `| retention step (2,000 events with their actions) | median ${result.retentionStep.medianMs} ms, max ${result.retentionStep.maxMs} ms |`,
];
printAndSave('history', {
  markdown: `## History: ${EVENTS.toLocaleString('en')} events through the daemon's writer\n\n| figure | value |\n|---|---|\n${rows.join('\n')}`,
  json: result,
});
