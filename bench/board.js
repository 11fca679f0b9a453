#!/usr/bin/env node
// The board profile: the storm, start-up and memory runs again inside a cgroup shaped like a
// small board (25% of one CPU, 128 MiB, no swap: bench/lib/cgroup.js), hotplugd beside
// systemd-udevd and busybox `mdev -d` in the same run, taking turns. Each daemon gets a new
// group (so peaks and OOM kills are its own); the event writer and the listener stay outside.
// hotplugd must not be OOM-killed and must lose no event of the storm.
// Usage: node bench/board.js [--events 100000] [--rounds 1] [--cpu 25] [--memory 128]
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { boardCgroup } from './lib/cgroup.js';
import { startHotplugd, startListener, startUdevd, writeUevents } from './lib/daemons.js';
import { exited, lines, median, monotonicNs, peakRssMiB, requireRoot, round, sleep, treeCpuSeconds, treePeakRssMiB, withScope } from './lib/system.js';
import { printAndSave } from './lib/report.js';
import { UDEVD_LIMIT_MS } from './storm.js';

const DAEMONS = ['hotplugd', 'udevd', 'mdev'];

// busybox mdev -d: it passes nothing on to listeners, so it is done when its CPU time has
// stood still for a second after the last write (its rate is then an upper bound).
async function startMdev(scope, launcher) {
  const conf = join(scope.dir, 'mdev.conf');
  writeFileSync(conf, '# no rules: mdev only reads and matches each event\n');
  // A private mount namespace with its own /etc/mdev.conf and /dev: it changes nothing outside.
  const script = `set -e; mount -t tmpfs tmpfs /dev; mount --bind "${conf}" /etc/mdev.conf 2>/dev/null || true; exec busybox mdev -df`;
  const child = scope.spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], { launcher });
  lines(child, child.stderr);
  child.stdout.resume();
  await sleep(300);
  if (child.exitCode !== null) throw new Error('busybox mdev -d exited at start');
  return { kind: 'mdev', pid: child.pid, child, async stop() { child.kill('SIGTERM'); await exited(child); } };
}

async function untilIdle(pid, sinceNs) {
  let last = treeCpuSeconds(pid);
  let lastChangeNs = sinceNs;
  for (;;) {
    await sleep(100);
    const now = treeCpuSeconds(pid);
    if (now !== last) {
      last = now;
      lastChangeNs = monotonicNs();
    } else if (Number(monotonicNs() - lastChangeNs) > 1e9) return lastChangeNs;
  }
}

async function stormOnBoard(kind, events, limits) {
  const group = boardCgroup(`hotplugd-board-${kind}-${process.pid}`, limits);
  try {
    return await withScope(`board-${kind}`, async (scope) => {
      const startedNs = monotonicNs();
      const daemon = kind === 'hotplugd'
        ? await startHotplugd(scope, { args: ['--no-coldplug'], launcher: group.launcher, nodeArgs: ['--max-semi-space-size=2'] })
        : kind === 'udevd' ? await startUdevd(scope, { launcher: group.launcher }) : await startMdev(scope, group.launcher);
      const startMs = kind === 'hotplugd' ? Number(monotonicNs() - startedNs) / 1e6 : null;
      await sleep(1000);
      const idleGroupMiB = group.peakMiB();
      group.resetPeak();
      const uuid = randomUUID();
      const listener = kind === 'mdev' ? undefined : await startListener(scope, uuid, events);
      const cpuBefore = treeCpuSeconds(daemon.pid);
      const written = writeUevents(scope, { count: events, uuid });
      let doneNs;
      let passedOn = null;
      let recorded = null;
      if (listener) {
        const heard = await listener.result(kind === 'udevd' ? UDEVD_LIMIT_MS : 600_000);
        passedOn = heard.received;
        doneNs = heard.received === events ? BigInt(heard.lastNs) : monotonicNs();
        if (kind === 'hotplugd') {
          const deadline = Date.now() + 120_000;
          while ((recorded = daemon.recorded()) < events && Date.now() < deadline) await sleep(20);
          const committedNs = monotonicNs();
          if (committedNs > doneNs) doneNs = committedNs;
        }
      } else {
        doneNs = await untilIdle(daemon.pid, written.endNs);
      }
      const seconds = Number(doneNs - written.startNs) / 1e9;
      const cpuSeconds = treeCpuSeconds(daemon.pid) - cpuBefore;
      const peakRss = kind === 'hotplugd' ? peakRssMiB(daemon.pid) : treePeakRssMiB(daemon.pid);
      const oomKills = group.oomKills();
      const stormGroupMiB = group.peakMiB();
      const counters = kind === 'hotplugd' ? await daemon.stop() : await daemon.stop();
      const processed = passedOn ?? events;
      return {
        daemon: kind,
        events,
        startMs: startMs === null ? null : round(startMs, 1),
        eventsPerSecond: Math.round(processed / seconds),
        seconds: round(seconds, 2),
        cpuSeconds: round(cpuSeconds, 2),
        passedOn,
        recorded,
        lost: kind === 'hotplugd' ? events - Math.min(passedOn, recorded) : null,
        unfinished: kind === 'udevd' ? events - passedOn : null,
        enobufs: counters?.enobufs ?? null,
        peakRssMiB: round(peakRss),
        idleGroupMiB: idleGroupMiB === null ? null : round(idleGroupMiB),
        stormGroupMiB: stormGroupMiB === null ? null : round(stormGroupMiB),
        oomKills,
      };
    });
  } finally {
    group.remove();
  }
}

export async function runBoard(events, rounds, limits = {}, log = console.error) {
  const runs = [];
  for (let r = 0; r < rounds; r++) {
    for (const kind of r % 2 === 0 ? DAEMONS : [...DAEMONS].reverse()) {
      const result = await stormOnBoard(kind, events, limits);
      log(`board ${kind} round ${r + 1}: ${result.eventsPerSecond} events/s, lost ${result.lost ?? '-'}, OOM kills ${result.oomKills}`);
      runs.push({ round: r + 1, ...result });
    }
  }
  const group = boardCgroup(`hotplugd-board-probe-${process.pid}`, limits);
  const describe = group.describe;
  group.remove();
  const hotplugd = runs.filter((r) => r.daemon === 'hotplugd');
  const summary = {
    hotplugdLost: hotplugd.reduce((s, r) => s + r.lost, 0),
    hotplugdOomKills: hotplugd.reduce((s, r) => s + r.oomKills, 0),
    hotplugdEventsPerSecond: median(hotplugd.map((r) => r.eventsPerSecond)),
    hotplugdStartMs: median(hotplugd.map((r) => r.startMs)),
  };
  const cell = (v) => (v === null || v === undefined ? '-' : v);
  const markdown = `## Board profile: ${events.toLocaleString('en')}-event storms in a cgroup of ${describe}

\`node bench/board.js --events ${events} --rounds ${rounds}\`: each daemon in its own group, taking turns.

| round | daemon | exec to started ms | events/s | seconds | CPU s | passed on | recorded | lost | unfinished | ENOBUFS | peak RSS MiB | group idle MiB | group peak MiB | OOM kills |
|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
${runs.map((r) => `| ${r.round} | ${r.daemon} | ${cell(r.startMs)} | ${r.eventsPerSecond} | ${r.seconds} | ${r.cpuSeconds} | ${cell(r.passedOn)} | ${cell(r.recorded)} | ${cell(r.lost)} | ${cell(r.unfinished)} | ${cell(r.enobufs)} | ${r.peakRssMiB} | ${cell(r.idleGroupMiB)} | ${cell(r.stormGroupMiB)} | ${r.oomKills} |`).join('\n')}

hotplugd runs with \`--max-semi-space-size=2\` (as the systemd unit), history and broadcast on;
"exec to started" runs from exec to its "hotplugd started" log line (rules loaded, sockets bound), inside the group. udevd (its default rules)
gets ${UDEVD_LIMIT_MS / 1000} s: what it had not passed on by then is "unfinished". mdev passes
nothing on: its time runs to the last second its CPU time moved, so its rate is an upper bound.
The group's memory includes the page cache its processes caused (the history file's writes).`;
  return { markdown, json: { limits: describe, runs, summary } };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  requireRoot();
  const { values } = parseArgs({ options: { events: { type: 'string', default: '100000' }, rounds: { type: 'string', default: '1' }, cpu: { type: 'string', default: '25' }, memory: { type: 'string', default: '128' } } });
  const section = await runBoard(Number(values.events), Number(values.rounds), { cpuPercent: Number(values.cpu), memoryMiB: Number(values.memory) });
  printAndSave('board', section);
  if (section.json.summary.hotplugdLost > 0 || section.json.summary.hotplugdOomKills > 0) process.exitCode = 1;
}
