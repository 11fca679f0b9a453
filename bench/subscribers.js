#!/usr/bin/env node
// Subscribers under a storm: N control-socket subscribers (all reading, or all stalled:
// connected, subscribed, never reading) while N_EVENTS `change` events go through the
// daemon in a fresh network namespace. Reports the storm's time (first write to the last
// event committed), whether every reading subscriber got every event, the daemon's peak
// RSS, and how many subscribers were dropped. Builds are compared in one run, alternated:
// --cli takes several hotplugd CLIs (name=path), e.g. a build of an earlier commit.
// Usage: node bench/subscribers.js [--subscribers 200] [--events 20000] [--rounds 3] [--cli name=path ...]
import { randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startHotplugd, writeUevents } from './lib/daemons.js';
import { CLI, REPO, lines, median, monotonicNs, peakRssMiB, requireRoot, round, sleep, withScope } from './lib/system.js';
import { printAndSave } from './lib/report.js';

const PER_PROCESS = 25;

/** Subscribers in processes of their own (25 each), as real clients are: one process could not read for 200. */
async function subscribe(scope, path, count, reading, events) {
  const groups = [];
  for (let first = 0; first < count; first += PER_PROCESS) {
    const args = [join(REPO, 'bench', 'lib', 'subscribers-client.js'), '--path', path, '--count', String(Math.min(PER_PROCESS, count - first)), '--expect', String(events + 1)];
    const child = scope.spawn(process.execPath, reading ? args : [...args, '--stalled']);
    const out = lines(child);
    child.stderr.resume();
    await out.waitFor((l) => l === 'READY', 30_000, 'the subscribers');
    groups.push({ child, out });
  }
  return {
    /** Resolves with how many subscribers got every line, waiting at most `timeoutMs`. */
    async complete(timeoutMs) {
      let complete = 0;
      for (const { child, out } of groups) {
        const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
        complete += JSON.parse(await out.waitFor((l) => l.startsWith('{'), timeoutMs + 10_000, 'the subscribers result')).complete;
        clearTimeout(timer);
      }
      return complete;
    },
  };
}

async function once(cli, subscribers, events, reading) {
  return withScope('subscribers', async (scope) => {
    // Builds that cap subscribers are given room for all of them.
    const capped = execFileSync(process.execPath, [cli, 'daemon', '--help'], { encoding: 'utf8' }).includes('--max-subscribers');
    const daemon = await startHotplugd(scope, { cli, args: ['--no-coldplug', ...(capped ? ['--max-subscribers', String(Math.max(1, subscribers))] : [])] });
    const clients = await subscribe(scope, daemon.controlPath, subscribers, reading, events);
    const written = writeUevents(scope, { count: events, uuid: randomUUID() });
    const deadline = Date.now() + 120_000;
    while (daemon.recorded() < events && Date.now() < deadline) await sleep(5);
    const recordedNs = monotonicNs();
    // Every reading subscriber gets its answer line plus one line per event.
    const complete = reading && subscribers > 0 ? await clients.complete(Math.max(1000, deadline - Date.now())) : null;
    const deliveredNs = monotonicNs();
    const peak = peakRssMiB(daemon.pid);
    const counters = await daemon.stop();
    return {
      stormSeconds: round(Number(recordedNs - written.startNs) / 1e9, 3),
      deliveredSeconds: complete !== null ? round(Number(deliveredNs - written.startNs) / 1e9, 3) : null,
      complete,
      peakRssMiB: round(peak),
      dropped: counters?.subscribersDropped ?? null,
    };
  });
}

const { values } = parseArgs({
  options: {
    subscribers: { type: 'string', default: '200' },
    events: { type: 'string', default: '20000' },
    rounds: { type: 'string', default: '3' },
    cli: { type: 'string', multiple: true, default: [`current=${CLI}`] },
  },
});
requireRoot();
const subscribers = Number(values.subscribers);
const events = Number(values.events);
const builds = values.cli.map((spec) => {
  const eq = spec.indexOf('=');
  return { name: spec.slice(0, eq), cli: spec.slice(eq + 1) };
});
const scenarios = [
  { name: 'no subscribers', count: 0, reading: true },
  { name: `${subscribers} reading`, count: subscribers, reading: true },
  { name: `${subscribers} stalled`, count: subscribers, reading: false },
];
const runs = [];
for (let round_ = 0; round_ < Number(values.rounds); round_++) {
  for (const scenario of scenarios) {
    for (const build of builds) {
      const result = await once(build.cli, scenario.count, events, scenario.reading);
      runs.push({ build: build.name, scenario: scenario.name, round: round_ + 1, ...result });
      process.stderr.write(`${JSON.stringify(runs.at(-1))}\n`);
    }
  }
}
const summary = [];
for (const scenario of scenarios) {
  for (const build of builds) {
    const rs = runs.filter((r) => r.build === build.name && r.scenario === scenario.name);
    summary.push({
      scenario: scenario.name, build: build.name, rounds: rs.length,
      stormSeconds: median(rs.map((r) => r.stormSeconds)),
      deliveredSeconds: scenario.reading && scenario.count > 0 ? median(rs.map((r) => r.deliveredSeconds)) : null,
      complete: scenario.reading && scenario.count > 0 ? Math.min(...rs.map((r) => r.complete)) : null,
      peakRssMiB: median(rs.map((r) => r.peakRssMiB)),
      dropped: Math.max(...rs.map((r) => r.dropped ?? 0)),
    });
  }
}
const markdown = [
  `Subscribers under a storm of ${events} events (medians of ${values.rounds} rounds, builds alternated): \`node bench/subscribers.js --subscribers ${subscribers} --events ${events}\``,
  '',
  '| scenario | build | storm s | all delivered s | subscribers complete | peak RSS MiB | dropped |',
  '|---|---|---|---|---|---|---|',
  ...summary.map((s) => `| ${s.scenario} | ${s.build} | ${s.stormSeconds} | ${s.deliveredSeconds ?? '-'} | ${s.complete ?? '-'} | ${s.peakRssMiB} | ${s.dropped} |`),
].join('\n');
printAndSave('subscribers', { markdown, json: { runs, summary } });
