#!/usr/bin/env node
// Start-up on a slow CPU: the board in a box of test/board (Debian's kernel in a QEMU guest
// with a software CPU, the host's root shared read-only), booted afresh for each run; the
// time from starting the daemon to every coldplugged device settled, systemd-udevd (trigger
// and settle, Debian's rules) and `hotplugd daemon --udev` (the same rules) taking turns.
// The board helpers are TypeScript: esbuild bundles them beside their sources first.
// Usage: node bench/guest.js [--rounds 3]
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { build } from 'esbuild';
import { printAndSave } from './lib/report.js';
import { REPO, median, requireRoot, round } from './lib/system.js';

async function boardHelpers() {
  // Beside the sources, so the helpers find test/board and dist/ as they do in the tests.
  const outfile = join(REPO, 'test', 'helpers', '.bench-board-usb.mjs');
  const stdin = { contents: "export { Board } from './board.ts'; export { startDaemon } from './board-usb.ts';", resolveDir: join(REPO, 'test', 'helpers'), loader: 'ts' };
  await build({ stdin, bundle: true, platform: 'node', format: 'esm', outfile, packages: 'external', logLevel: 'error' });
  try {
    return await import(outfile);
  } finally {
    rmSync(outfile, { force: true });
  }
}

export async function runGuest(rounds, log = console.error) {
  const { Board, startDaemon } = await boardHelpers();
  const settledMs = { udevd: [], hotplugd: [] };
  for (let r = 0; r < rounds; r++) {
    for (const daemon of r % 2 === 0 ? ['udevd', 'hotplugd'] : ['hotplugd', 'udevd']) {
      const board = await Board.boot();
      try {
        const ms = await startDaemon(board, daemon);
        settledMs[daemon].push(ms);
        log(`guest round ${r + 1} ${daemon}: daemon start to coldplug settled ${ms} ms`);
      } finally {
        await board.close();
      }
    }
  }
  const udevd = median(settledMs.udevd);
  const hotplugd = median(settledMs.hotplugd);
  const markdown = `## Start-up on a slow CPU: the board in a box (QEMU, software CPU, Debian's kernel)

\`node bench/guest.js --rounds ${rounds}\`: a fresh guest per run, daemons taking turns; daemon start to every
coldplugged device settled (\`udevadm settle\`), Debian's udev rules on both sides.

| daemon | settled, ms (median) | runs |
|---|---:|---|
| systemd-udevd (trigger + settle) | ${udevd} | ${settledMs.udevd.join(', ')} |
| hotplugd daemon --udev | ${hotplugd} | ${settledMs.hotplugd.join(', ')} |

hotplugd / udevd: ${round(hotplugd / udevd, 2)}× (the goal is ≤ 1.0×).`;
  return { markdown, json: { settledMs, medianMs: { udevd, hotplugd }, ratio: round(hotplugd / udevd, 2) } };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  requireRoot();
  const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' } } });
  printAndSave('guest', await runGuest(Number(values.rounds)));
}
