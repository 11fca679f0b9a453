#!/usr/bin/env node
// Storm: N synthetic kernel events (`change` written to lo's uevent file in a fresh
// network namespace) through hotplugd and through systemd-udevd, alternating A/B. An
// event counts as processed when the daemon passes it on to libudev listeners (netlink
// group 2), which both do after their rules and actions; for hotplugd it must also be
// committed to the history. Time runs from the first write to the last event processed.
// With --cli NAME=PATH (repeated), hotplugd builds are compared instead, alternating.
// Usage: node bench/storm.js [--events 10000,100000] [--rounds 2]
//        node bench/storm.js --cli before=OLD/dist/cli/main.js --cli after=dist/cli/main.js [--events 20000] [--rounds 5]
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { startHotplugd, startListener, startUdevd, writeUevents } from './lib/daemons.js';
import { monotonicNs, peakRssMiB, requireRoot, round, sleep, treeCpuSeconds, treePeakRssMiB, withScope } from './lib/system.js';
import { printAndSave } from './lib/report.js';

// udevd's queue gets slower the longer it is (each event is checked against those queued
// before it): past this, its rate so far is reported and the rest counted as unfinished.
export const UDEVD_LIMIT_MS = 90_000;

export async function stormOnce(kind, events, cli = undefined) {
  return withScope(`storm-${kind}`, async (scope) => {
    const daemon = kind === 'udevd' ? await startUdevd(scope) : await startHotplugd(scope, { args: ['--no-coldplug'], ...(cli ? { cli } : {}) });
    const uuid = randomUUID();
    const listener = await startListener(scope, uuid, events);
    const cpuBefore = treeCpuSeconds(daemon.pid);
    const written = writeUevents(scope, { count: events, uuid });
    const heard = await listener.result(kind === 'udevd' ? UDEVD_LIMIT_MS : 120_000);
    const unfinished = events - heard.received;
    let doneNs = unfinished > 0 ? monotonicNs() : BigInt(heard.lastNs);
    let recorded = heard.received;
    if (daemon.kind === 'hotplugd') {
      const deadline = Date.now() + 60_000;
      while ((recorded = daemon.recorded()) < events && Date.now() < deadline) await sleep(2);
      // Done when both passed on and committed; this errs against hotplugd by one poll.
      const committedNs = monotonicNs();
      if (committedNs > doneNs) doneNs = committedNs;
    } else if (unfinished === 0) {
      await daemon.settle();
    }
    const cpuSeconds = treeCpuSeconds(daemon.pid) - cpuBefore;
    const peak = daemon.kind === 'hotplugd' ? peakRssMiB(daemon.pid) : treePeakRssMiB(daemon.pid);
    const counters = await daemon.stop();
    const seconds = Number(doneNs - written.startNs) / 1e9;
    return {
      daemon: kind,
      events,
      processed: heard.received,
      recorded,
      // Events udevd had not processed when its time was up are unfinished, not lost.
      unfinished: kind === 'udevd' ? unfinished : 0,
      lost: kind === 'udevd' ? 0 : events - Math.min(heard.received, recorded),
      enobufs: counters?.enobufs ?? null,
      listenerOverflows: heard.overflows,
      seconds: round(seconds, 3),
      eventsPerSecond: Math.round(heard.received / seconds),
      writeSeconds: round(Number(written.endNs - written.startNs) / 1e9, 3),
      cpuSeconds: round(cpuSeconds, 2),
      cpuMicrosecondsPerEvent: Math.round((cpuSeconds / Math.max(1, heard.received)) * 1e6),
      peakRssMiB: round(peak),
    };
  });
}

/** hotplugd and udevd alternately, `rounds` times per size. */
export async function runStorms(sizes, rounds, log = console.error) {
  const runs = [];
  for (const events of sizes) {
    for (let r = 0; r < rounds; r++) {
      for (const kind of ['hotplugd', 'udevd']) {
        const result = await stormOnce(kind, events);
        log(`storm ${events} ${kind} round ${r + 1}: ${result.eventsPerSecond} events/s, lost ${result.lost}`);
        runs.push({ round: r + 1, ...result });
      }
    }
  }
  const summary = sizes.map((events) => {
    const of = (kind) => runs.filter((r) => r.events === events && r.daemon === kind);
    const best = (kind, key) => Math.max(...of(kind).map((r) => r[key]));
    const mean = (kind, key) => of(kind).reduce((s, r) => s + r[key], 0) / of(kind).length;
    return {
      events,
      hotplugdEventsPerSecond: Math.round(mean('hotplugd', 'eventsPerSecond')),
      udevdEventsPerSecond: Math.round(mean('udevd', 'eventsPerSecond')),
      ratio: round(mean('hotplugd', 'eventsPerSecond') / mean('udevd', 'eventsPerSecond')),
      cpuRatio: round(mean('udevd', 'cpuMicrosecondsPerEvent') / mean('hotplugd', 'cpuMicrosecondsPerEvent')),
      hotplugdLost: of('hotplugd').reduce((s, r) => s + r.lost, 0),
      udevdLost: of('udevd').reduce((s, r) => s + r.lost, 0),
      hotplugdPeakRssMiB: best('hotplugd', 'peakRssMiB'),
      udevdPeakRssMiB: best('udevd', 'peakRssMiB'),
    };
  });
  const rows = runs.map((r) =>
    `| ${r.events} | ${r.round} | ${r.daemon} | ${r.eventsPerSecond} | ${r.seconds} | ${r.cpuSeconds} | ${r.cpuMicrosecondsPerEvent} | ${r.peakRssMiB} | ${r.processed} | ${r.recorded} | ${r.enobufs ?? '-'} | ${r.lost} | ${r.unfinished} |`);
  const markdown = `## Storm: synthetic kernel events, end to end, hotplugd and systemd-udevd alternating

| events | round | daemon | events/s | seconds | CPU s | CPU µs/event | peak RSS MiB | passed on | recorded | ENOBUFS | lost | unfinished |
|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
${rows.join('\n')}

| events | hotplugd events/s (mean) | udevd events/s (mean) | ratio | CPU per event, udevd/hotplugd | lost hotplugd | lost udevd |
|---:|---:|---:|---:|---:|---:|---:|
${summary.map((s) => `| ${s.events} | ${s.hotplugdEventsPerSecond} | ${s.udevdEventsPerSecond} | ${s.ratio}× | ${s.cpuRatio}× | ${s.hotplugdLost} | ${s.udevdLost} |`).join('\n')}

udevd's CPU and RSS include its worker processes. udevd gets ${UDEVD_LIMIT_MS / 1000} s per storm: events it
had not passed on by then are "unfinished" and its rate is what it managed until then. "passed on" is what a netlink group-2
listener received; "recorded" is history rows for hotplugd, the same count for udevd.`;
  return { markdown, json: { runs, summary } };
}

/** hotplugd builds against each other, alternating (the order flips every round); medians per build. */
export async function compareBuilds(sizes, rounds, clis, log = console.error) {
  const runs = [];
  for (const events of sizes) {
    for (let r = 0; r < rounds; r++) {
      for (const [name, cli] of r % 2 === 0 ? clis : [...clis].reverse()) {
        const result = await stormOnce(name, events, cli);
        log(`storm ${events} ${name} round ${r + 1}: ${result.eventsPerSecond} events/s, ${result.cpuMicrosecondsPerEvent} µs CPU/event, lost ${result.lost}`);
        runs.push({ round: r + 1, ...result });
      }
    }
  }
  const median = (values) => {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted.length % 2 ? sorted[(sorted.length - 1) / 2] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
  };
  const summary = sizes.flatMap((events) => clis.map(([name]) => {
    const of = runs.filter((r) => r.events === events && r.daemon === name);
    return {
      events,
      build: name,
      medianEventsPerSecond: Math.round(median(of.map((r) => r.eventsPerSecond))),
      medianCpuMicrosecondsPerEvent: Math.round(median(of.map((r) => r.cpuMicrosecondsPerEvent))),
      medianPeakRssMiB: round(median(of.map((r) => r.peakRssMiB))),
      hotplugdLost: of.reduce((s, r) => s + r.lost, 0),
    };
  }));
  const markdown = `## Storm: hotplugd builds compared, alternating

\`node bench/storm.js --events ${sizes.join(',')} --rounds ${rounds}${clis.map(([n, p]) => ` --cli ${n}=${p}`).join('')}\`

| events | build | events/s (median) | CPU µs/event (median) | peak RSS MiB (median) | lost |
|---:|---|---:|---:|---:|---:|
${summary.map((s) => `| ${s.events} | ${s.build} | ${s.medianEventsPerSecond} | ${s.medianCpuMicrosecondsPerEvent} | ${s.medianPeakRssMiB} | ${s.hotplugdLost} |`).join('\n')}`;
  return { markdown, json: { runs, summary } };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  requireRoot();
  const { values } = parseArgs({ options: { events: { type: 'string', default: '10000,100000' }, rounds: { type: 'string', default: '2' }, cli: { type: 'string', multiple: true } } });
  const sizes = values.events.split(',').map(Number);
  const clis = values.cli?.map((c) => [c.slice(0, c.indexOf('=')), c.slice(c.indexOf('=') + 1)]) ?? [];
  if (clis.some(([name, path]) => !name || !path)) throw new Error('--cli takes NAME=PATH');
  const section = clis.length > 0 ? await compareBuilds(sizes, Number(values.rounds), clis) : await runStorms(sizes, Number(values.rounds));
  printAndSave(clis.length > 0 ? 'storm-builds' : 'storm', section);
  if (section.json.summary.some((s) => s.hotplugdLost > 0)) process.exitCode = 1;
}
