#!/usr/bin/env node
// Start-up on a slow CPU: the board in a box of test/board (Debian's kernel in a QEMU guest
// with a software CPU, the host's root shared read-only), booted afresh for each run; the
// time from starting the daemon to every coldplugged device settled, systemd-udevd (trigger
// and settle, Debian's rules) and `hotplugd daemon --udev` (the same rules) taking turns.
// The board helpers are TypeScript: esbuild bundles them beside their sources first.
// Usage: node bench/guest.js [--rounds 3]
import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
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

// hotplugd boots twice a round: once on a new board (its cache directory empty: parsed rule files
// and compiled code are made then) and once more with the cache that boot left, as every later
// boot of a board finds it (/var/cache/hotplugd on the board's storage, kept across boots).
export async function runGuest(rounds, log = console.error) {
  const { Board, startDaemon } = await boardHelpers();
  const settledMs = { udevd: [], 'hotplugd-first': [], hotplugd: [] };
  for (let r = 0; r < rounds; r++) {
    const cache = mkdtempSync(join(tmpdir(), 'hotplugd-bench-cache-'));
    try {
      const order = r % 2 === 0 ? ['udevd', 'hotplugd-first', 'hotplugd'] : ['hotplugd-first', 'hotplugd', 'udevd'];
      for (const run of order) {
        const board = await Board.boot(run === 'udevd' ? {} : { persist: { '/var/cache/hotplugd': cache } });
        try {
          const ms = await startDaemon(board, run === 'udevd' ? 'udevd' : 'hotplugd');
          settledMs[run].push(ms);
          log(`guest round ${r + 1} ${run}: daemon start to coldplug settled ${ms} ms`);
        } finally {
          await board.close();
        }
      }
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  }
  const medians = Object.fromEntries(Object.entries(settledMs).map(([k, v]) => [k, median(v)]));
  const markdown = `## Start-up on a slow CPU: the board in a box (QEMU, software CPU, Debian's kernel)

\`node bench/guest.js --rounds ${rounds}\`: a fresh guest per run, daemons taking turns; daemon start to every
coldplugged device settled (\`udevadm settle\`), Debian's udev rules on both sides. hotplugd's later boot
finds the cache (/var/cache/hotplugd: parsed rule files, compiled code) its first boot left, as a board's
every boot after its first does.

| daemon | settled, ms (median) | runs |
|---|---:|---|
| systemd-udevd (trigger + settle) | ${medians.udevd} | ${settledMs.udevd.join(', ')} |
| hotplugd daemon --udev, first boot (empty cache) | ${medians['hotplugd-first']} | ${settledMs['hotplugd-first'].join(', ')} |
| hotplugd daemon --udev, later boots | ${medians.hotplugd} | ${settledMs.hotplugd.join(', ')} |

hotplugd / udevd: ${round(medians.hotplugd / medians.udevd, 2)}× on later boots, ${round(medians['hotplugd-first'] / medians.udevd, 2)}× on the first (the goal is ≤ 1.0×).`;
  return { markdown, json: { settledMs, medianMs: medians, ratio: round(medians.hotplugd / medians.udevd, 2), firstBootRatio: round(medians['hotplugd-first'] / medians.udevd, 2) } };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  requireRoot();
  const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' } } });
  printAndSave('guest', await runGuest(Number(values.rounds)));
}
