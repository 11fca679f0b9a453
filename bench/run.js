#!/usr/bin/env node
// `npm run bench`: every benchmark, hotplugd beside systemd-udevd in the same run, then
// one report (bench/results/report.md and report.json) with the goals and whether each
// was met. Needs root and Debian's `udev` package. Sections: --only storm,latency,...
// Usage: npm run bench [-- --only storm,memory] [-- --saved storm] [-- --quick]
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runColdplug } from './coldplug.js';
import { runLatency } from './latency.js';
import { runLinks } from './links.js';
import { runCollect } from './collect.js';
import { runFleet } from './fleet.js';
import { runFleetLoad } from './fleet-load.js';
import { runServe } from './serve.js';
import { runMemory } from './memory.js';
import { runBoard } from './board.js';
import { runGuest } from './guest.js';
import { runStartup } from './startup.js';
import { runStorms } from './storm.js';
import { runSameRules } from './same-rules.js';
import { runEmulated } from './emulated.js';
import { RESULTS, printAndSave } from './lib/report.js';
import { REPO, UNIT_ENV, UNIT_NODE_ARGS, requireRoot } from './lib/system.js';

const SECTIONS = ['storm', 'same-rules', 'emulated', 'latency', 'coldplug', 'memory', 'memory-20k', 'startup', 'board', 'guest', 'rules', 'history', 'links', 'fleet', 'collect', 'fleet-load', 'serve'];
const { values } = parseArgs({ options: { only: { type: 'string', default: SECTIONS.join(',') }, saved: { type: 'string', default: '' }, quick: { type: 'boolean', default: false } } });
const only = new Set(values.only.split(','));
const quick = values.quick; // smaller sizes, to try the benchmarks out; not for figures
requireRoot();

// The two that run in-process benchmarks of their own keep their own scripts.
function script(name, args) {
  execFileSync(process.execPath, [join(REPO, 'bench', `${name}.js`), ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
  return { markdown: readFileSync(join(RESULTS, `${name}.md`), 'utf8').trim(), json: JSON.parse(readFileSync(join(RESULTS, `${name}.json`), 'utf8')) };
}

const sections = {};
// --saved storm: take a section from an earlier run's bench/results instead of running it.
for (const name of values.saved.split(',').filter(Boolean)) {
  sections[name] = { markdown: readFileSync(join(RESULTS, `${name}.md`), 'utf8').trim(), json: JSON.parse(readFileSync(join(RESULTS, `${name}.json`), 'utf8')) };
}
const run = async (name, body) => {
  if (!only.has(name)) return;
  sections[name] = await body();
  printAndSave(name, sections[name]);
};
// 100k events take udevd minutes (its queue is slower the longer it is): one round of those.
await run('storm', async () => {
  const small = await runStorms([10_000], quick ? 1 : 3);
  if (quick) return small;
  const large = await runStorms([100_000], 1);
  return { markdown: `${small.markdown}\n\n${large.markdown}`, json: { runs: [...small.json.runs, ...large.json.runs], summary: [...small.json.summary, ...large.json.summary] } };
});
// Debian's rules in both (issue 33): the figure where users stand.
await run('same-rules', () => runSameRules(20_000, quick ? 1 : 3));
// The arm64 board bundle under qemu-user (issue 35): for comparing builds.
await run('emulated', () => runEmulated(quick ? 1 : 3, quick ? 1000 : 5000));
await run('latency', () => runLatency(1000, quick ? 3 : 10));
await run('coldplug', () => runColdplug(quick ? 1 : 3));
// Memory is measured as the systemd unit and `npm start` run the daemon.
const UNIT = { ...process.env, ...UNIT_ENV };
await run('memory', () => runMemory(quick ? 3 : 10, quick ? 20_000 : 100_000, console.error, UNIT_NODE_ARGS, undefined, UNIT));
await run('memory-20k', () => runMemory(3, 20_000, console.error, UNIT_NODE_ARGS, undefined, UNIT));
await run('startup', () => runStartup(quick ? 3 : 7));
await run('board', () => runBoard(quick ? 10_000 : 100_000, 1));
await run('guest', () => runGuest(quick ? 1 : 3));
await run('links', () => runLinks(quick ? 1 : 3, quick));
await run('fleet', () => runFleet(quick ? 1 : 2, quick ? { events: 2000, backlog: 5000, live: 1000 } : { events: 20_000, backlog: 100_000, live: 10_000 }));
await run('collect', () => runCollect(quick ? 1 : 3, { boards: 10, perBoard: quick ? 300 : 3000 }));
await run('fleet-load', () => runFleetLoad(quick ? { boards: 100, records: 100, processes: 2, backends: ['sqlite'] } : { boards: 1000, records: 1000, processes: 4, backends: ['sqlite', 'postgres', 'postgres4'] }));
await run('serve', () => runServe(quick ? 50_000 : 1_000_000));
if (only.has('rules')) sections.rules = script('rules', ['--seconds', quick ? '1' : '3']);
if (only.has('history')) {
  sections.history = script('history', ['--events', quick ? '100000' : '1000000']);
  sections['history-thread'] = script('history-thread', ['--events', quick ? '20000' : '200000']);
}

// The goals of issues 8 and 19, each with the figure it is judged on.
// `before` is the figure issue 19 started from (its table, 2-core VM), for its own goals.
const goals = [];
const goal = (name, target, value, met, before = '') => goals.push({ name, target, value, met, before });
const storm100k = sections.storm?.json.summary.find((s) => s.events === 100_000) ?? sections.storm?.json.summary.at(-1);
if (storm100k) {
  goal('storm throughput, history and broadcast on', '≥ 50,000 events/s', `${storm100k.hotplugdEventsPerSecond} events/s (${storm100k.events} events)`, storm100k.hotplugdEventsPerSecond >= 50_000, '21.6k events/s (20k events)');
  goal('storm vs udevd', '≥ 10×', `${storm100k.ratio}×`, storm100k.ratio >= 10);
  goal('events lost by hotplugd', '0', String(storm100k.hotplugdLost), storm100k.hotplugdLost === 0);
  goal('peak RSS during the storm', '< 80 MB', `${storm100k.hotplugdPeakRssMiB} MiB`, storm100k.hotplugdPeakRssMiB * 1.048576 < 80);
}
const hotplugdLatency = sections.latency?.json.results.find((r) => r.daemon === 'hotplugd');
if (hotplugdLatency) goal('latency p99 at 1,000 events/s', '< 5 ms', `${hotplugdLatency.passedOn.p99Ms} ms`, hotplugdLatency.passedOn.p99Ms < 5);
if (sections.memory) goal('RSS growth over repeated storms', 'none', `${sections.memory.json.growthMiBPerStorm} MiB per storm`, sections.memory.json.growthMiBPerStorm < 0.5);
if (sections.coldplug) goal('coldplug vs udevd trigger+settle', '≥ 5× faster', `${sections.coldplug.json.ratio}× from exec; ${sections.coldplug.json.coldplugOnlyRatio}× coldplug alone`, sections.coldplug.json.ratio >= 5);
if (sections.startup) goal('start-up to READY', '< 300 ms', `${sections.startup.json.medianReadyMs} ms`, sections.startup.json.medianReadyMs < 300);
// Issue 19: fitting a board.
const startup = sections.startup?.json;
if (startup) {
  goal('exec → READY vs bare node', '≤ 2×', `${startup.medianReadyMs} ms vs ${startup.medianBareNodeMs} ms`, startup.medianReadyMs <= 2 * startup.medianBareNodeMs, '336 ms vs 115 ms');
  if (startup.testMs !== undefined) goal(`\`hotplugd test\`, Debian's rules, one device${startup.testDevice ? ` (slowest: ${startup.testDevice})` : ''}`, '≤ 100 ms', `${startup.testMs} ms (udevadm test ${startup.udevadmTestMs ?? '-'} ms)`, startup.testMs <= 100, '~300 ms (a disk; a PCI device: 1,409 ms)');
}
if (sections.memory) {
  const m = sections.memory.json;
  goal('idle RSS', '≤ 50 MiB', `${m.idleMiB} MiB (own ${m.idleAnonMiB} MiB)`, m.idleMiB <= 50, '60–67 MiB');
  goal(`peak RSS over ${m.storms} storms of ${m.events.toLocaleString('en')} events`, '≤ 80 MiB', `${m.peakMiB} MiB`, m.peakMiB <= 80, '180 MiB (100k events)');
  goal(`RSS after each of ${m.storms} storms`, 'flat', `${m.afterMiB.join(', ')} MiB (${m.growthMiBPerStorm} MiB per storm)`, m.growthMiBPerStorm < 0.5);
}
const memory20k = sections['memory-20k']?.json;
if (memory20k) goal('peak RSS, 20k-event storms', '≤ 80 MiB', `${memory20k.peakMiB} MiB`, memory20k.peakMiB <= 80, '112–115 MiB');
const historyRate = sections.history?.json.rowsPerSecond;
if (historyRate !== undefined) goal('history writer', '≥ 100,000 rows/s', `${historyRate} rows/s, ${sections.history.json.bytesPerEvent} bytes/event`, historyRate >= 100_000, '30k rows/s, 502 bytes/event');
if (sections.coldplug) {
  const c = sections.coldplug.json;
  goal('coldplug alone vs udevd trigger+settle', '≥ 3× faster', `${c.hotplugdColdplugOnlySeconds} s vs ${c.udevdSeconds} s: ${c.coldplugOnlyRatio}×`, c.coldplugOnlyRatio >= 3, '0.16 s vs 0.15 s: 0.9×');
  goal('exec → every device coldplugged', '≤ 2× udevd trigger+settle', `${c.hotplugdSeconds} s vs ${c.udevdSeconds} s`, c.hotplugdSeconds <= 2 * c.udevdSeconds, '0.5 s');
}
const rules10k = sections.rules?.json.results?.find((r) => r.rules === 10_000);
if (rules10k) goal('rule evaluation at 10,000 rules', '≥ 10,000/s', `${rules10k.perSecond}/s`, rules10k.perSecond >= 10_000, '~1,000/s');
const guest = sections.guest?.json;
if (guest) goal('start to settled in the emulated board vs udevd (issue 31)', '≤ 1.0×', `later boots ${guest.medianMs.hotplugd} ms, first boot ${guest.medianMs['hotplugd-first']} ms vs ${guest.medianMs.udevd} ms: ${guest.ratio}× (first ${guest.firstBootRatio}×)`, guest.ratio <= 1, '22.8–29 s vs 8–9 s');
const board = sections.board?.json.summary;
if (board) goal(`board cgroup: ${sections.board.json.runs[0]?.events.toLocaleString('en')}-event storm, hotplugd lost / OOM-killed`, '0 / 0', `${board.hotplugdLost} / ${board.hotplugdOomKills}`, board.hotplugdLost === 0 && board.hotplugdOomKills === 0, 'not measured');

const same = sections['same-rules']?.json.summary;
if (same) {
  const udev = same.find((s) => s.daemon === 'hotplugd --udev');
  const udevd = same.find((s) => s.daemon === 'udevd');
  const shipped = same.find((s) => s.daemon === 'hotplugd (shipped rules)');
  goal('Debian\'s rules in both: hotplugd --udev vs udevd, 20k-event storm (issue 33)', '≥ 10×, 0 lost', `${udev.eventsPerSecond} vs ${udevd.eventsPerSecond} events/s: ${udev.ratio}×, lost ${udev.lost}`, udev.ratio >= 10 && udev.lost === 0, '3,021 vs 1,369 events/s: 2.2×');
  goal('peak RSS, Debian\'s rules, 20k-event storm (issue 33)', '≤ 100 MiB', `${udev.peakRssMiB} MiB`, udev.peakRssMiB <= 100, '143 MiB');
  goal('written to storage per event, Debian\'s rules (issue 33)', '≤ 1,500 bytes', `${udev.bytesWrittenPerEvent} bytes (shipped rules: ${shipped.bytesWrittenPerEvent})`, udev.bytesWrittenPerEvent <= 1500, '10,257 bytes');
  goal('database per event, Debian\'s rules (issue 33)', '≤ 600 bytes', `${udev.databaseBytesPerEvent} bytes (shipped rules: ${shipped.databaseBytesPerEvent})`, udev.databaseBytesPerEvent <= 600, '~4,500 bytes');
}
const ruleQueries = Object.entries(sections.history?.json.queries ?? {}).filter(([name]) => name.includes('--rule'));
if (ruleQueries.length > 0) {
  const slowest = Math.max(...ruleQueries.map(([, t]) => t.medianMs));
  goal(`history --rule at ${sections.history.json.events.toLocaleString('en')} events (issue 33)`, '≤ 100 ms', `${slowest} ms (slowest median of ${ruleQueries.length} queries)`, slowest <= 100, 'no --rule');
}

const collect = sections.collect?.json.summary;
if (collect) {
  goal('collector ingest into SQLite, 10 boards (issue 32)', '≥ 20,000 records/s', `${collect.sqliteRecordsPerSecond} records/s`, collect.sqliteRecordsPerSecond >= 20_000, '820 records/s');
  goal('collector ingest into PostgreSQL, 10 boards (issue 32)', '≥ 20,000 records/s', `${collect.postgresRecordsPerSecond} records/s`, collect.postgresRecordsPerSecond >= 20_000, '461 records/s');
}
for (const r of sections['fleet-load']?.json.runs ?? []) {
  goal(`${r.boards} boards × ${r.records / r.boards} records into ${r.backend}: every record once`, 'yes', `${r.exactlyOnce ? 'yes' : `no: ${r.stored} of ${r.records}`}, ${r.recordsPerSecond} records/s`, r.exactlyOnce, 'records lost at 1,000 queued messages');
}
const fleet = sections.fleet?.json;
if (fleet?.summary?.peakRssForwardingMiB !== undefined) {
  const f = fleet.summary;
  goal('forwarding board peak RSS during a backlog, beside one that does not forward (issue 32)', '≤ +20 MiB', `${f.peakRssForwardingMiB} vs ${f.peakRssPlainMiB} MiB`, f.peakRssForwardingMiB - f.peakRssPlainMiB <= 20, '202 vs 125 MiB');
}

const cpuModel = cpus()[0]?.model ?? 'unknown CPU';
const header = `# hotplugd benchmarks

${new Date().toISOString()}: Node.js ${process.version}, Linux ${release()}, ${cpus().length} × ${cpuModel}. Each
section ran hotplugd and systemd-udevd (Debian's udev, default rules) on this machine in this run.

| goal | target | before (issue 19) | measured | met |
|---|---|---|---|---|
${goals.map((g) => `| ${g.name} | ${g.target} | ${g.before} | ${g.value} | ${g.met ? 'yes' : '**no**'} |`).join('\n')}`;
const report = [header, ...Object.values(sections).map((s) => s.markdown)].join('\n\n');
writeFileSync(join(RESULTS, 'report.md'), `${report}\n`);
writeFileSync(join(RESULTS, 'report.json'), `${JSON.stringify({ at: new Date().toISOString(), node: process.version, kernel: release(), cpus: cpus().length, goals, sections: Object.fromEntries(Object.entries(sections).map(([k, v]) => [k, v.json])) }, null, 2)}\n`);
console.log(`\n${header}\n\nFull report: bench/results/report.md (and report.json)`);
