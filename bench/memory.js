#!/usr/bin/env node
// Memory: one hotplugd through repeated storms of N events (default 10 × 100k): RSS when
// idle before, the peak (VmHWM), and RSS after each storm once processed and idle for a
// second. Growth is the least-squares slope of the after-storm RSS over storms 2..10.
// With --variant NAME=FLAGS (repeatable; FLAGS are Node/V8 flags, space-separated, may be
// empty; a word @PATH runs that build's CLI instead) each variant runs the same storms in
// turn, to choose heap settings by measurement.
// Usage: node bench/memory.js [--storms 10] [--events 100000] [--variant shipped= --variant small-young=--max-semi-space-size=1]
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { startHotplugd, writeUevents } from './lib/daemons.js';
import { anonMiB, peakRssMiB, requireRoot, round, rssMiB, sleep, withScope } from './lib/system.js';
import { printAndSave } from './lib/report.js';

function slope(ys) {
  const xs = ys.map((_, i) => i);
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  const num = xs.reduce((s, x, i) => s + (x - mx) * (ys[i] - my), 0);
  const den = xs.reduce((s, x) => s + (x - mx) ** 2, 0);
  return den === 0 ? 0 : num / den;
}

export async function runMemory(storms, events, log = console.error, nodeArgs = [], cli = undefined, env = process.env) {
  return withScope('memory', async (scope) => {
    const daemon = await startHotplugd(scope, { args: ['--no-coldplug'], nodeArgs, env, ...(cli ? { cli } : {}) });
    await sleep(1000);
    const idleMiB = round(rssMiB(daemon.pid));
    const idleAnonMiB = round(anonMiB(daemon.pid));
    const afterMiB = [];
    const stormSeconds = [];
    const afterAnonMiB = [];
    for (let i = 1; i <= storms; i++) {
      const started = performance.now();
      writeUevents(scope, { count: events, uuid: randomUUID() });
      await daemon.settle();
      while (daemon.recorded() < i * events) await sleep(10);
      stormSeconds.push((performance.now() - started) / 1000);
      await sleep(1000);
      afterMiB.push(round(rssMiB(daemon.pid)));
      afterAnonMiB.push(round(anonMiB(daemon.pid)));
      log(`memory storm ${i}/${storms}: RSS ${afterMiB.at(-1)} MiB after, peak so far ${round(peakRssMiB(daemon.pid))} MiB`);
    }
    const peakMiB = round(peakRssMiB(daemon.pid));
    const counters = await daemon.stop();
    const growth = round(slope(afterMiB.slice(1)), 2);
    const markdown = `## Memory: one hotplugd through ${storms} storms of ${events} events

| idle RSS MiB | peak RSS MiB | ${afterMiB.map((_, i) => `after ${i + 1}`).join(' | ')} |
|---:|---:|${afterMiB.map(() => '---:').join('|')}|
| ${idleMiB} | ${peakMiB} | ${afterMiB.join(' | ')} |

Trend of the after-storm RSS over storms 2..${storms}: ${growth} MiB per storm. ENOBUFS: ${counters?.enobufs ?? '?'}.`;
    const medianStormSeconds = round([...stormSeconds].sort((a, b) => a - b)[Math.floor(stormSeconds.length / 2)], 2);
    return { markdown, json: { storms, events, idleMiB, idleAnonMiB, peakMiB, afterMiB, afterAnonMiB, growthMiBPerStorm: growth, medianStormSeconds, enobufs: counters?.enobufs ?? null } };
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  requireRoot();
  const { values } = parseArgs({ options: { storms: { type: 'string', default: '10' }, events: { type: 'string', default: '100000' }, variant: { type: 'string', multiple: true } } });
  if (values.variant === undefined) printAndSave('memory', await runMemory(Number(values.storms), Number(values.events)));
  else {
    const variants = values.variant.map((v) => [v.slice(0, v.indexOf('=')), v.slice(v.indexOf('=') + 1).split(' ').filter(Boolean)]);
    const rows = [];
    for (const [name, flags] of variants) {
      const cli = flags.find((f) => f.startsWith('@'))?.slice(1);
      const { json } = await runMemory(Number(values.storms), Number(values.events), console.error, flags.filter((f) => !f.startsWith('@')), cli);
      rows.push({ name, flags: flags.join(' '), ...json });
    }
    const markdown = `## Memory: heap settings, ${values.storms} storms of ${values.events} events each

| variant | Node flags | idle RSS MiB (own) | peak RSS MiB | last after-storm MiB (own) | growth MiB/storm | median storm s |
|---|---|---:|---:|---:|---:|---:|
${rows.map((r) => `| ${r.name} | ${r.flags || '(none)'} | ${r.idleMiB} (${r.idleAnonMiB}) | ${r.peakMiB} | ${r.afterMiB.at(-1)} (${r.afterAnonMiB.at(-1)}) | ${r.growthMiBPerStorm} | ${r.medianStormSeconds} |`).join('\n')}

"Own" is RSS without file pages: Node's 98 MB binary and the shared libraries, whose pages are
shared with every Node process and can be dropped by the kernel under pressure.`;
    printAndSave('memory-variants', { markdown, json: rows });
  }
}
