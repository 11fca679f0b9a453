#!/usr/bin/env node
// Memory: one hotplugd through repeated storms of N events (default 10 × 100k): RSS when
// idle before, the peak (VmHWM), and RSS after each storm once processed and idle for a
// second. Growth is the least-squares slope of the after-storm RSS over storms 2..10.
// Usage: node bench/memory.js [--storms 10] [--events 100000]
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { startHotplugd, writeUevents } from './lib/daemons.js';
import { peakRssMiB, requireRoot, round, rssMiB, sleep, withScope } from './lib/system.js';
import { printAndSave } from './lib/report.js';

function slope(ys) {
  const xs = ys.map((_, i) => i);
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  const num = xs.reduce((s, x, i) => s + (x - mx) * (ys[i] - my), 0);
  const den = xs.reduce((s, x) => s + (x - mx) ** 2, 0);
  return den === 0 ? 0 : num / den;
}

export async function runMemory(storms, events, log = console.error) {
  return withScope('memory', async (scope) => {
    const daemon = await startHotplugd(scope, { args: ['--no-coldplug'] });
    await sleep(1000);
    const idleMiB = round(rssMiB(daemon.pid));
    const afterMiB = [];
    for (let i = 1; i <= storms; i++) {
      writeUevents(scope, { count: events, uuid: randomUUID() });
      await daemon.settle();
      while (daemon.recorded() < i * events) await sleep(10);
      await sleep(1000);
      afterMiB.push(round(rssMiB(daemon.pid)));
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
    return { markdown, json: { storms, events, idleMiB, peakMiB, afterMiB, growthMiBPerStorm: growth, enobufs: counters?.enobufs ?? null } };
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  requireRoot();
  const { values } = parseArgs({ options: { storms: { type: 'string', default: '10' }, events: { type: 'string', default: '100000' } } });
  printAndSave('memory', await runMemory(Number(values.storms), Number(values.events)));
}
