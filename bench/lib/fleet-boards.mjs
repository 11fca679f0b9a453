// Many boards in one process for bench/fleet-load.js: each is the real Forwarder (dist/) with
// its window, batches and collector acknowledgements, reading from a made-up outbox of N
// events instead of a history database (events only; their actions ride inside, as on a board).
// Prints one JSON line when every board's records are confirmed by the collector.
// Usage: node bench/lib/fleet-boards.mjs URL FIRST COUNT RECORDS
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { REPO } from './system.js';

const { Forwarder } = await import(join(REPO, 'dist', 'fleet', 'forward.js'));
const { createLogger } = await import(join(REPO, 'dist', 'log.js'));
const { record } = createRequire(import.meta.url)('./fleet-record.cjs');

const [url, first, count, records] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5])];
const log = await createLogger('warn');
const at = Date.now();

function outbox(board) {
  let kept = { eventId: 0, actionId: 0, incidentId: 0 };
  return {
    cursors: () => kept,
    keep: (cursors) => (kept = cursors),
    backlog: (cursors) => records - cursors.eventId,
    read(cursors, limit) {
      const items = [];
      for (let id = cursors.eventId + 1; id <= Math.min(records, cursors.eventId + limit); id++) {
        const { type: _t, board: _b, after: _a, ...r } = record(board, id, at);
        items.push({ stream: 'event', id, after: id - 1, record: r });
      }
      return items;
    },
  };
}

const boards = [];
for (let i = first; i < first + count; i++) {
  const board = `board${i}`;
  const forwarder = new Forwarder({ url, prefix: 'hotplugd', board, version: 'bench' }, outbox(board), log);
  boards.push(forwarder);
}
const started = Date.now();
await Promise.all(boards.map((b) => b.start()));
for (;;) {
  const done = boards.filter((b) => b.confirmed.eventId >= records).length;
  if (done === boards.length) break;
  await new Promise((resolve) => setTimeout(resolve, 200));
}
const sent = boards.reduce((n, b) => n + b.sent, 0);
const resends = boards.reduce((n, b) => n + b.resends, 0);
process.stdout.write(`${JSON.stringify({ boards: boards.length, ms: Date.now() - started, sent, resends, rssMiB: Math.round(process.resourceUsage().maxRSS / 1024) })}\n`);
await Promise.all(boards.map((b) => b.stop()));
process.exit(0);
