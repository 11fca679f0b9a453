// The public client is a client of the protocol only: importing `hotplugd/client` (the
// package's own export, as an application imports it) loads no native addon, so it runs
// where the daemon's addons were never built.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');

// Counts process.dlopen calls made while the module is imported and a client is made.
const PROBE = `
let calls = 0;
const dlopen = process.dlopen;
process.dlopen = function (...args) { calls++; return dlopen.apply(this, args); };
const { HotplugClient } = await import(process.argv[1]);
new HotplugClient({ controlPath: '/nonexistent/control.sock', dbPath: '/nonexistent/history.db' });
console.log(JSON.stringify({ calls, client: typeof HotplugClient }));
`;

function importCounting(specifier: string): { calls: number; client: string } {
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', PROBE, specifier], { cwd: ROOT, encoding: 'utf8' });
  expect(run.stderr).toBe('');
  return JSON.parse(run.stdout) as { calls: number; client: string };
}

describe('importing hotplugd/client', () => {
  it('calls process.dlopen zero times', () => {
    expect(importCounting('hotplugd/client')).toEqual({ calls: 0, client: 'function' });
  });

  it('the probe sees a native addon being loaded (the count can fail)', () => {
    // The daemon's modules do load one: the netlink addon, on first use.
    const probe = `
      let calls = 0; const dlopen = process.dlopen;
      process.dlopen = function (...args) { calls++; return dlopen.apply(this, args); };
      const { netlinkAddon } = await import(${JSON.stringify(join(ROOT, 'dist/os/native.js'))});
      netlinkAddon();
      console.log(calls);`;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', probe], { cwd: ROOT, encoding: 'utf8' });
    expect(Number(run.stdout.trim())).toBeGreaterThan(0);
  });
});
