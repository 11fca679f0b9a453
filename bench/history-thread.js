#!/usr/bin/env node
// The history writer on the event loop's thread, or in a worker thread of its own: what each
// costs the main thread per event, and how fast rows reach the disk. The same HistoryWriter
// records the same events (bench/lib/history-fixture.js: recorded USB events over 1,000
// devices) into a real SQLite file; in the worker variant the main thread only builds each
// event and posts it (structured clone) in batches of 2,000, as a daemon with a writer thread
// would. A measurement for issue 19's "measure both", not the daemon's code.
// Usage: node bench/history-thread.js [--events 200000] [--rounds 3]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { openHistoryDb } from '../dist/history/db.js';
import { HistoryWriter } from '../dist/history/writer.js';
import { SPAN_MS, eventTemplates, fixtureEvent, recordFixtureEvent } from './lib/history-fixture.js';
import { printAndSave } from './lib/report.js';
import { median } from './lib/system.js';

const BATCH = 2000;

if (!isMainThread) {
  // The worker: owns the database and the writer; commits each batch and says so.
  const db = openHistoryDb(workerData.path);
  const writer = new HistoryWriter(db, { batchSize: Number.MAX_SAFE_INTEGER, flushDelayMs: 3_600_000 });
  parentPort.on('message', (batch) => {
    for (const item of batch) recordFixtureEvent(writer, item);
    writer.flush();
    parentPort.postMessage(batch.length);
  });
} else {
  const { values } = parseArgs({ options: { events: { type: 'string', default: '200000' }, rounds: { type: 'string', default: '3' } } });
  const EVENTS = Number(values.events);
  const templates = eventTemplates();

  async function once(mode) {
    const dir = mkdtempSync(join(tmpdir(), 'hotplugd-bench-history-thread-'));
    const path = join(dir, 'history.db');
    const start = Date.now() - SPAN_MS;
    try {
      let mainNs = 0n;
      const began = process.hrtime.bigint();
      if (mode === 'main thread') {
        const db = openHistoryDb(path);
        const writer = new HistoryWriter(db, { batchSize: BATCH, flushDelayMs: 3_600_000 });
        for (let i = 0; i < EVENTS; i++) recordFixtureEvent(writer, fixtureEvent(templates, i, EVENTS, start));
        writer.flush();
        mainNs = process.hrtime.bigint() - began;
        db.close();
      } else {
        openHistoryDb(path).close(); // the schema, before the worker opens it
        const worker = new Worker(new URL(import.meta.url), { workerData: { path } });
        let committed = 0;
        const done = new Promise((resolve) => worker.on('message', (n) => (committed += n) === EVENTS && resolve()));
        for (let i = 0; i < EVENTS; i += BATCH) {
          const t = process.hrtime.bigint();
          const batch = [];
          for (let j = i; j < Math.min(EVENTS, i + BATCH); j++) batch.push(fixtureEvent(templates, j, EVENTS, start));
          worker.postMessage(batch);
          mainNs += process.hrtime.bigint() - t;
          // Let the worker's acknowledgements in, as a daemon's event loop would.
          await new Promise((resolve) => setImmediate(resolve));
        }
        await done;
        await worker.terminate();
      }
      const seconds = Number(process.hrtime.bigint() - began) / 1e9;
      return { mode, eventsPerSecond: Math.round(EVENTS / seconds), mainThreadMicrosPerEvent: Number((Number(mainNs) / 1000 / EVENTS).toFixed(1)) };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  const runs = [];
  for (let r = 0; r < Number(values.rounds); r++) {
    for (const mode of r % 2 === 0 ? ['main thread', 'worker thread'] : ['worker thread', 'main thread']) {
      const result = await once(mode);
      console.error(`history-thread ${mode}: ${result.eventsPerSecond} events/s, ${result.mainThreadMicrosPerEvent} µs of main thread per event`);
      runs.push(result);
    }
  }
  const of = (mode, key) => median(runs.filter((r) => r.mode === mode).map((r) => r[key]));
  const markdown = `## History writer: main thread or a worker thread, ${EVENTS.toLocaleString('en')} events

\`node bench/history-thread.js --events ${EVENTS} --rounds ${values.rounds}\`, modes alternating, medians:

| writer | events/s to disk | main thread µs per event |
|---|---:|---:|
| on the main thread | ${of('main thread', 'eventsPerSecond')} | ${of('main thread', 'mainThreadMicrosPerEvent')} |
| in a worker thread | ${of('worker thread', 'eventsPerSecond')} | ${of('worker thread', 'mainThreadMicrosPerEvent')} |

The main thread's share in the worker variant is building each event and posting it (a
structured clone of the event, its properties and device); the SQLite work is the worker's.`;
  printAndSave('history-thread', { markdown, json: { events: EVENTS, runs } });
}
