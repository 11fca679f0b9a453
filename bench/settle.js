#!/usr/bin/env node
// `udevadm settle` after a storm, hotplugd beside systemd-udevd: the real udevadm asks each
// daemon (hotplugd serving udev's control socket and /run/udev/queue with --udev-db
// /run/udev, in a private mount namespace; udevd as bench/lib/daemons.js runs it) to settle
// right after N `change` events were written to lo. Reports how long settle took (from its
// start, and from the first write) and, for hotplugd, whether every event was recorded by
// the time it returned. Daemons alternate, rounds give medians.
// Usage: node bench/settle.js [--events 10000] [--rounds 3]
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { startUdevd, writeUevents } from './lib/daemons.js';
import { CLI, lines, median, monotonicNs, requireRoot, round, sleep, withScope } from './lib/system.js';
import { printAndSave } from './lib/report.js';

async function startHotplugdUdev(scope) {
  const dbPath = join(scope.dir, 'history.db');
  const script = `mount -t tmpfs tmpfs /run/udev && exec "${process.execPath}" "${CLI}" daemon --db "${dbPath}" --control "${scope.dir}/c.sock" --udev-db /run/udev --no-coldplug --dev "${scope.dir}/dev" --log-format json`;
  const child = scope.spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script]);
  const log = lines(child, child.stderr);
  child.stdout.resume();
  await log.waitFor((l) => l.includes('"hotplugd started"'), 30_000, 'hotplugd to start');
  return {
    pid: child.pid,
    udevadm: (...args) => execFileSync('nsenter', ['-t', String(child.pid), '-m', '-n', 'udevadm', ...args], { encoding: 'utf8' }),
    recorded() {
      const db = new Database(dbPath, { readonly: true });
      try {
        return db.prepare("SELECT count(*) AS n FROM events WHERE devpath = '/devices/virtual/net/lo' AND action = 'change'").get().n;
      } finally {
        db.close();
      }
    },
    async stop() {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    },
  };
}

async function once(kind, events) {
  return withScope(`settle-${kind}`, async (scope) => {
    const daemon = kind === 'hotplugd' ? await startHotplugdUdev(scope) : await startUdevd(scope);
    await sleep(500);
    const written = writeUevents(scope, { count: events, uuid: randomUUID() });
    const settleStart = monotonicNs();
    daemon.udevadm('settle', '--timeout=600');
    const settled = monotonicNs();
    const recorded = kind === 'hotplugd' ? daemon.recorded() : null;
    await daemon.stop();
    return {
      daemon: kind, events,
      settleSeconds: round(Number(settled - settleStart) / 1e9, 3),
      fromFirstWriteSeconds: round(Number(settled - written.startNs) / 1e9, 3),
      recordedWhenSettled: recorded,
    };
  });
}

const { values } = parseArgs({ options: { events: { type: 'string', default: '10000' }, rounds: { type: 'string', default: '3' } } });
requireRoot();
const events = Number(values.events);
const runs = [];
for (let r = 0; r < Number(values.rounds); r++) {
  for (const kind of ['hotplugd', 'udevd']) {
    runs.push({ round: r + 1, ...(await once(kind, events)) });
    process.stderr.write(`${JSON.stringify(runs.at(-1))}\n`);
  }
}
const summary = ['hotplugd', 'udevd'].map((kind) => {
  const rs = runs.filter((r) => r.daemon === kind);
  return {
    daemon: kind, events, rounds: rs.length,
    settleSeconds: median(rs.map((r) => r.settleSeconds)),
    fromFirstWriteSeconds: median(rs.map((r) => r.fromFirstWriteSeconds)),
    allRecorded: kind === 'hotplugd' ? rs.every((r) => r.recordedWhenSettled === events) : null,
  };
});
const markdown = [
  `\`udevadm settle\` right after a storm of ${events} events (medians of ${values.rounds} rounds, alternating): \`node bench/settle.js --events ${events}\``,
  '',
  '| daemon | settle s | first write to settled s | every event recorded when settle returned |',
  '|---|---|---|---|',
  ...summary.map((s) => `| ${s.daemon} | ${s.settleSeconds} | ${s.fromFirstWriteSeconds} | ${s.allRecorded === null ? '-' : s.allRecorded ? 'yes' : 'NO'} |`),
].join('\n');
printAndSave('settle', { markdown, json: { runs, summary } });
