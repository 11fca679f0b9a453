#!/usr/bin/env node
// The same rules on both sides: Debian's udev rules (what /usr/lib/udev/rules.d holds, but
// 60-ifplugd.rules, which RUNs a program for every net event: masked as udev masks a file)
// read by systemd-udevd and by `hotplugd daemon --udev` (its shipped rules beside them, as the
// README runs it), each in a private mount namespace, through a `change` storm on a fresh
// network namespace's lo; an event is processed when a libudev listener hears it (and, for
// hotplugd, its history row is committed). Also hotplugd on its shipped rules alone, for
// scale. For hotplugd: bytes written to storage per event (/proc/PID/io write_bytes, from
// before the storm until every row is committed) and database bytes per event (the file
// after a checkpoint, over the events recorded). hotplugd runs as the systemd unit and `npm
// start` run it (node --max-semi-space-size=2, MALLOC_ARENA_MAX=2).
// Usage: node bench/same-rules.js [--events 20000] [--rounds 3] [--cli NAME=PATH ...]
import { randomUUID } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { startHotplugd, startListener, startUdevd, udevMountLauncher, udevRulesDir, writeUevents } from './lib/daemons.js';
import { CLI, UNIT_ENV, UNIT_NODE_ARGS, median, monotonicNs, peakRssMiB, requireRoot, round, sleep, treeCpuSeconds, treePeakRssMiB, withScope } from './lib/system.js';
import { printAndSave } from './lib/report.js';

export const MASKED = ['60-ifplugd.rules'];

function writeBytes(pid) {
  const line = readFileSync(`/proc/${pid}/io`, 'utf8').split('\n').find((l) => l.startsWith('write_bytes:'));
  return Number(line.split(/\s+/)[1]);
}

/** kind: 'udevd', 'hotplugd --udev' or 'hotplugd (shipped rules)'. */
export async function sameRulesOnce(kind, events, cli = CLI) {
  return withScope('same-rules', async (scope) => {
    const daemon = kind === 'udevd'
      ? await startUdevd(scope, { masked: MASKED })
      : await startHotplugd(scope, { cli, nodeArgs: UNIT_NODE_ARGS, env: { ...process.env, ...UNIT_ENV }, args: ['--no-coldplug', ...(kind === 'hotplugd (shipped rules)' ? [] : ['--udev'])], launcher: udevMountLauncher(udevRulesDir(scope, { masked: MASKED })) });
    const uuid = randomUUID();
    const listener = await startListener(scope, uuid, events);
    const cpuBefore = treeCpuSeconds(daemon.pid);
    const writtenBefore = daemon.kind === 'hotplugd' ? writeBytes(daemon.pid) : 0;
    const written = writeUevents(scope, { count: events, uuid });
    const heard = await listener.result(180_000);
    let doneNs = BigInt(heard.lastNs ?? 0) || monotonicNs();
    let recorded = heard.received;
    let bytesWrittenPerEvent = null;
    if (daemon.kind === 'hotplugd') {
      const deadline = Date.now() + 60_000;
      while ((recorded = daemon.recorded()) < events && Date.now() < deadline) await sleep(2);
      const committedNs = monotonicNs();
      if (committedNs > doneNs) doneNs = committedNs;
      bytesWrittenPerEvent = Math.round((writeBytes(daemon.pid) - writtenBefore) / events);
    } else {
      await daemon.settle();
    }
    const cpuSeconds = treeCpuSeconds(daemon.pid) - cpuBefore;
    const peak = daemon.kind === 'hotplugd' ? peakRssMiB(daemon.pid) : treePeakRssMiB(daemon.pid);
    await daemon.stop();
    let databaseBytesPerEvent = null;
    if (daemon.kind === 'hotplugd') {
      const db = new Database(daemon.dbPath);
      try {
        db.pragma('wal_checkpoint(TRUNCATE)');
      } finally {
        db.close();
      }
      databaseBytesPerEvent = Math.round(statSync(daemon.dbPath).size / Math.max(1, recorded));
    }
    const seconds = Number(doneNs - written.startNs) / 1e9;
    return {
      daemon: kind, events, processed: heard.received, recorded,
      lost: daemon.kind === 'hotplugd' ? events - Math.min(heard.received, recorded) : events - heard.received,
      seconds: round(seconds, 3), eventsPerSecond: Math.round(heard.received / seconds),
      cpuMicrosecondsPerEvent: Math.round((cpuSeconds / Math.max(1, heard.received)) * 1e6),
      peakRssMiB: round(peak), bytesWrittenPerEvent, databaseBytesPerEvent,
    };
  });
}

export async function runSameRules(events, rounds, clis = [['hotplugd', CLI]], log = console.error) {
  const kinds = [...clis.map(([name, cli]) => ({ name: `${name} --udev`, kind: 'hotplugd --udev', cli })), { name: 'udevd', kind: 'udevd' },
    ...clis.map(([name, cli]) => ({ name: `${name} (shipped rules)`, kind: 'hotplugd (shipped rules)', cli }))];
  const runs = [];
  for (let r = 0; r < rounds; r++) {
    for (const k of r % 2 === 0 ? kinds : [...kinds].reverse()) {
      const result = { ...(await sameRulesOnce(k.kind, events, k.cli)), daemon: k.name, round: r + 1 };
      log(`same rules ${events} ${k.name} round ${r + 1}: ${result.eventsPerSecond} events/s, ${result.peakRssMiB} MiB, lost ${result.lost}, ${result.bytesWrittenPerEvent ?? '-'} B written/event, ${result.databaseBytesPerEvent ?? '-'} B db/event`);
      runs.push(result);
    }
  }
  const summary = kinds.map((k) => {
    const of = runs.filter((r) => r.daemon === k.name);
    const med = (key) => (of[0][key] === null ? null : median(of.map((r) => r[key])));
    return { daemon: k.name, eventsPerSecond: Math.round(med('eventsPerSecond')), peakRssMiB: Math.max(...of.map((r) => r.peakRssMiB)), lost: of.reduce((n, r) => n + r.lost, 0),
      cpuMicrosecondsPerEvent: med('cpuMicrosecondsPerEvent'), bytesWrittenPerEvent: med('bytesWrittenPerEvent'), databaseBytesPerEvent: med('databaseBytesPerEvent') };
  });
  const udevd = summary.find((s) => s.daemon === 'udevd').eventsPerSecond;
  for (const s of summary) s.ratio = round(s.eventsPerSecond / udevd, 1);
  const markdown = `## Same rules: Debian's udev rules in udevd and in hotplugd --udev, a ${events.toLocaleString('en')}-event storm

\`node bench/same-rules.js --events ${events} --rounds ${rounds}${clis.length > 1 || clis[0][1] !== CLI ? clis.map(([n, p]) => ` --cli ${n}=${p}`).join('') : ''}\`: every rule file of /usr/lib/udev/rules.d but ${MASKED.join(', ')} (it runs a program for every net event), masked as udev masks, for both; medians of ${rounds} rounds, daemons alternating. Peak RSS is the highest of the rounds (udevd's with its workers).

| daemon | events/s | vs udevd | CPU µs/event | peak RSS MiB | lost | written to storage, bytes/event | database, bytes/event |
|---|---:|---:|---:|---:|---:|---:|---:|
${summary.map((s) => `| ${s.daemon} | ${s.eventsPerSecond} | ${s.ratio}× | ${s.cpuMicrosecondsPerEvent} | ${s.peakRssMiB} | ${s.lost} | ${s.bytesWrittenPerEvent ?? '-'} | ${s.databaseBytesPerEvent ?? '-'} |`).join('\n')}`;
  return { markdown, json: { events, rounds, runs, summary } };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  requireRoot();
  const { values } = parseArgs({ options: { events: { type: 'string', default: '20000' }, rounds: { type: 'string', default: '3' }, cli: { type: 'string', multiple: true } } });
  const clis = values.cli?.map((c) => [c.slice(0, c.indexOf('=')), c.slice(c.indexOf('=') + 1)]) ?? [['hotplugd', CLI]];
  if (clis.some(([name, path]) => !name || !path)) throw new Error('--cli takes NAME=PATH');
  const section = await runSameRules(Number(values.events), Number(values.rounds), clis);
  printAndSave('same-rules', section);
  if (section.json.summary.some((s) => s.daemon !== 'udevd' && s.lost > 0)) process.exitCode = 1;
}
