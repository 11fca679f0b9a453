#!/usr/bin/env node
// Latency at a steady rate: the writer notes when it sends each event (CLOCK_MONOTONIC,
// just before the write that makes the kernel send it); the daemon's action notes when
// it starts. For systemd-udevd the action is a RUN program that stamps the clock; it
// also passes the event on to libudev listeners after its rules, as hotplugd does. For
// hotplugd the timestamp is taken when it passes the event on to listeners: after its
// rules, device actions and history row, so an upper bound on its first action starting.
// Usage: node bench/latency.js [--rate 1000] [--seconds 10]
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startHotplugd, startListener, startUdevd, writeUevents } from './lib/daemons.js';
import { percentile, requireRoot, round, withScope } from './lib/system.js';
import { printAndSave } from './lib/report.js';

// A RUN program that does nothing but stamp the clock: what udevd's first action costs.
const STAMP_C = `#include <stdio.h>
#include <time.h>
int main(int argc, char **argv) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  if (argc < 3) return 2;
  FILE *out = fopen(argv[1], "a");
  if (!out) return 1;
  fprintf(out, "%s %lld\\n", argv[2], (long long)now.tv_sec * 1000000000LL + now.tv_nsec);
  return fclose(out) == 0 ? 0 : 1;
}
`;

function latencies(sendNs, arrivals) {
  const ms = [];
  for (const [i, at] of arrivals) if (sendNs[i] !== undefined) ms.push(Number(at - sendNs[i]) / 1e6);
  ms.sort((a, b) => a - b);
  return {
    samples: ms.length,
    missing: sendNs.length - ms.length,
    p50Ms: round(percentile(ms, 0.5), 3),
    p99Ms: round(percentile(ms, 0.99), 3),
    maxMs: round(ms[ms.length - 1] ?? NaN, 3),
  };
}

async function measure(kind, rate, count) {
  return withScope(`latency-${kind}`, async (scope) => {
    const uuid = randomUUID();
    const stamps = join(scope.dir, 'stamps');
    let daemon;
    if (kind === 'udevd') {
      writeFileSync(join(scope.dir, 'stamp.c'), STAMP_C);
      execFileSync('cc', ['-O2', '-o', join(scope.dir, 'stamp'), join(scope.dir, 'stamp.c')]);
      writeFileSync(stamps, '');
      daemon = await startUdevd(scope, {
        extraRules: `ACTION=="change", SUBSYSTEM=="net", ENV{SYNTH_UUID}=="${uuid}", RUN+="${join(scope.dir, 'stamp')} ${stamps} $env{SYNTH_ARG_I}"\n`,
      });
    } else {
      daemon = await startHotplugd(scope, { args: ['--no-coldplug'] });
    }
    const listener = await startListener(scope, uuid, count);
    const written = writeUevents(scope, { count, uuid, rate });
    const heard = await listener.result(60_000);
    await daemon.settle();
    await daemon.stop();
    const passedOn = latencies(written.sendNs, Object.entries(heard.arrivals).map(([i, at]) => [Number(i), BigInt(at)]));
    const result = { daemon: kind, rate, events: count, passedOn };
    if (kind === 'udevd') {
      const runs = readFileSync(stamps, 'utf8').split('\n').filter(Boolean).map((l) => l.split(' '));
      result.runProgram = latencies(written.sendNs, runs.map(([i, at]) => [Number(i), BigInt(at)]));
    }
    return result;
  });
}

export async function runLatency(rate, seconds, log = console.error) {
  const count = rate * seconds;
  const results = [];
  for (const kind of ['hotplugd', 'udevd']) {
    const result = await measure(kind, rate, count);
    log(`latency ${kind}: p99 ${result.passedOn.p99Ms} ms (passed on)${result.runProgram ? `, ${result.runProgram.p99Ms} ms (RUN program)` : ''}`);
    results.push(result);
  }
  const row = (label, l) => `| ${label} | ${l.samples} | ${l.missing} | ${l.p50Ms} | ${l.p99Ms} | ${l.maxMs} |`;
  const [hotplugd, udevd] = results;
  const markdown = `## Latency at ${rate} events/s for ${seconds} s: kernel send → action

| daemon, measured at | samples | missing | p50 ms | p99 ms | max ms |
|---|---:|---:|---:|---:|---:|
${row('hotplugd, event passed on (after rules, actions, history row)', hotplugd.passedOn)}
${row('udevd, event passed on (after rules and RUN)', udevd.passedOn)}
${row('udevd, RUN program started', udevd.runProgram)}`;
  return { markdown, json: { rate, seconds, results } };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  requireRoot();
  const { values } = parseArgs({ options: { rate: { type: 'string', default: '1000' }, seconds: { type: 'string', default: '10' } } });
  printAndSave('latency', await runLatency(Number(values.rate), Number(values.seconds)));
}
