#!/usr/bin/env node
// Link flaps: how long from `ip link set PEER down` to the rule's program starting, hotplugd
// (NETLINK_ROUTE) beside ifplugd (Debian's ifplugd 0.28, which polls the link every second),
// at 1, 10 and 100 flaps a second on a veth pair in a network namespace. Both run the same
// action script, which appends the time it started (CLOCK_REALTIME, ns) for each "down".
// A flap is counted as seen when a start falls before the next flap's down; latency is
// p50/p99 over the flaps seen. CPU per flap: the daemon's process tree (user + system,
// action scripts included) over the series, divided by the flaps. Peers alternate.
// Usage: node bench/links.js [--rounds 3] [--quick]
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CLI, lines, median, ownCpuSeconds, percentile, requireRoot, round, sleep, treeCpuSeconds, withScope } from './lib/system.js';
import { printAndSave } from './lib/report.js';

// 0.2/s holds each state 2.5 s: long enough for ifplugd's 1 s poll, the anchor.
const RATES = [0.2, 1, 10, 100];
const realtimeNs = () => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));

function prepare(scope) {
  const marks = join(scope.dir, 'downs');
  const script = join(scope.dir, 'mark.sh');
  writeFileSync(script, `#!/bin/sh\n[ "$2" = down ] && date +%s%N >> ${marks}\nexit 0\n`);
  chmodSync(script, 0o755);
  scope.run('ip', ['link', 'add', 'bl0', 'type', 'veth', 'peer', 'name', 'bp0']);
  scope.run('ip', ['link', 'set', 'bl0', 'up']);
  scope.run('ip', ['link', 'set', 'bp0', 'up']);
  return { marks, script };
}

async function startHotplugd(scope, script) {
  const rules = join(scope.dir, 'rules.d');
  scope.run('mkdir', ['-p', rules]);
  writeFileSync(join(rules, '10-bench.yaml'), `rules:\n  - name: bench-down\n    match: { action: link-down, kernel: bl0 }\n    run: [["${script}", "bl0", "down"]]\n`);
  const child = scope.spawn(process.execPath, [CLI, 'daemon', '--db', join(scope.dir, 'h.db'), '--control', join(scope.dir, 'c.sock'), '--rules-dir', rules, '--no-coldplug', '--no-watch', '--dev', join(scope.dir, 'dev'), '--log-format', 'json']);
  const log = lines(child, child.stderr);
  child.stdout.resume();
  await log.waitFor((l) => l.includes('"hotplugd started"'), 30_000, 'hotplugd to start');
  await sleep(500);
  return child;
}

async function startIfplugd(scope, script) {
  // No delays (-u0 -d0), the default 1 s poll, the script not run at start or quit.
  const child = scope.spawn('ifplugd', ['-n', '-s', '-i', 'bl0', '-r', script, '-u0', '-d0', '-p', '-q', '-f', '-I', '-a']);
  child.stdout.resume();
  child.stderr.resume();
  await sleep(1500);
  if (child.exitCode !== null) throw new Error('ifplugd exited');
  return child;
}

async function series(scope, daemon, rate, flaps, marks) {
  // One flap first, unmeasured: the first program a daemon runs pays for loading what runs programs.
  scope.run('ip', ['link', 'set', 'bp0', 'down']);
  await sleep(1500);
  scope.run('ip', ['link', 'set', 'bp0', 'up']);
  await sleep(1500);
  writeFileSync(marks, '');
  const ip = scope.spawn('ip', ['-force', '-batch', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
  ip.stdout.resume();
  const period = 1000 / rate;
  const downs = [];
  const cpuBefore = treeCpuSeconds(daemon.pid);
  const ownBefore = ownCpuSeconds(daemon.pid);
  const started = performance.now();
  for (let i = 0; i < flaps; i++) {
    await sleep(Math.max(0, started + i * period - performance.now()));
    downs.push(realtimeNs());
    ip.stdin.write('link set bp0 down\n');
    await sleep(Math.max(0, started + i * period + period / 2 - performance.now()));
    ip.stdin.write('link set bp0 up\n');
  }
  ip.stdin.end();
  await new Promise((resolve) => ip.once('exit', resolve));
  await sleep(2500); // ifplugd polls every second: let the last one be seen
  const cpu = treeCpuSeconds(daemon.pid) - cpuBefore;
  const own = ownCpuSeconds(daemon.pid) - ownBefore;
  const starts = existsSync(marks) ? readFileSync(marks, 'utf8').split('\n').filter(Boolean).map((l) => BigInt(l)).sort((a, b) => (a < b ? -1 : 1)) : [];
  // Each start belongs to the latest down before it that no earlier start took.
  const latencies = [];
  let taken = -1;
  for (const start of starts) {
    let i = downs.length - 1;
    while (i >= 0 && downs[i] > start) i--;
    if (i <= taken) continue;
    taken = i;
    latencies.push(Number(start - downs[i]) / 1e6);
  }
  latencies.sort((a, b) => a - b);
  return {
    seen: latencies.length,
    p50Ms: latencies.length ? round(percentile(latencies, 0.5), 2) : null,
    p99Ms: latencies.length ? round(percentile(latencies, 0.99), 2) : null,
    cpuMsPerFlap: round((own * 1000) / flaps, 2),
    cpuMsPerFlapWithScripts: round((cpu * 1000) / flaps, 2),
  };
}

async function once(peer, rate, flaps) {
  return withScope(`links-${peer}`, async (scope) => {
    const { marks, script } = prepare(scope);
    const daemon = peer === 'hotplugd' ? await startHotplugd(scope, script) : await startIfplugd(scope, script);
    try {
      return { peer, rate, flaps, ...(await series(scope, daemon, rate, flaps, marks)) };
    } finally {
      daemon.kill('SIGTERM');
      await new Promise((resolve) => (daemon.exitCode !== null ? resolve() : daemon.once('exit', resolve)));
    }
  });
}

export async function runLinks(rounds = 3, quick = false) {
  const runs = [];
  for (let r = 0; r < rounds; r++) {
    for (const rate of RATES) {
      const flaps = quick ? Math.max(2, Math.min(rate * 2, 20)) : Math.max(5, rate * 3);
      const order = r % 2 === 0 ? ['hotplugd', 'ifplugd'] : ['ifplugd', 'hotplugd'];
      for (const peer of order) runs.push(await once(peer, rate, flaps));
    }
  }
  const summary = [];
  for (const rate of RATES) {
    for (const peer of ['hotplugd', 'ifplugd']) {
      const mine = runs.filter((x) => x.peer === peer && x.rate === rate);
      const pick = (key) => {
        const values = mine.map((x) => x[key]).filter((v) => v !== null);
        return values.length ? median(values) : null;
      };
      summary.push({ peer, rate, flaps: mine[0].flaps, seenMedian: pick('seen'), p50Ms: pick('p50Ms'), p99Ms: pick('p99Ms'), cpuMsPerFlap: pick('cpuMsPerFlap'), cpuMsPerFlapWithScripts: pick('cpuMsPerFlapWithScripts') });
    }
  }
  const rows = summary.map((s) => `| ${s.rate}/s | ${s.peer} | ${s.seenMedian} of ${s.flaps} | ${s.p50Ms ?? '-'} | ${s.p99Ms ?? '-'} | ${s.cpuMsPerFlap} | ${s.cpuMsPerFlapWithScripts} |`);
  const markdown = `## Link flaps: \`ip link set PEER down\` → the rule's program, hotplugd beside ifplugd

\`node bench/links.js --rounds ${rounds}\`: veth pair in a network namespace, the peer flapped at each rate; both run the
same action script. Medians over ${rounds} round(s), peers alternating. ifplugd: \`-u0 -d0\` (no delays), 1 s polling.
A flap is seen when its down started the script; at 100/s the kernel's link watch itself folds some flaps into one.

| flaps | daemon | flaps seen | p50 ms | p99 ms | CPU ms per flap (daemon) | with its scripts |
|---|---|---|---|---|---|---|
${rows.join('\n')}`;
  return { markdown, json: { runs, summary } };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, quick: { type: 'boolean', default: false } } });
  requireRoot();
  printAndSave('links', await runLinks(Number(values.rounds), values.quick));
}
