// hotplugd against udev itself: every device of this machine visible in a network namespace
// (a veth pair and a bridge added), Debian's stock rules, `udevadm test` (run in a private
// mount namespace with a tmpfs on /run/udev, so it changes nothing) beside hotplugd's
// evaluation of the same rules (test/helpers/differential.mjs). Final properties, links,
// tags and RUN programs are compared device by device; at least 98% must be identical, and
// every difference must be one of the accepted ones below, each with its reason.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { Netns, canUseNamespaces } from '../helpers/netns.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const HELPER = join(REPO, 'test', 'helpers', 'differential.mjs');
const haveUdev = existsSync('/usr/lib/udev/rules.d') || process.env.CI === 'true';

/** Differences accepted, by property, and why (docs/udev.md lists them too). */
const ACCEPTED: Record<string, string> = {};
/** udev builtins hotplugd recognises but does not carry out (docs/udev.md): their RUN entries are set aside. */
const UNSUPPORTED_RUN_BUILTINS: Record<string, string> = {
  uaccess: "needs systemd-logind: grants the active seat's user access through ACLs",
};
// Set anew at each evaluation, or counted per run.
const IGNORED = new Set(['USEC_INITIALIZED', 'SEQNUM']);

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

type Properties = Record<string, string>;

function differences(udev: Properties, hotplugd: Properties): string[] {
  const keys = new Set([...Object.keys(udev), ...Object.keys(hotplugd)].filter((k) => !IGNORED.has(k)));
  const normal = (key: string, value: string | undefined) => {
    if (value === undefined) return value;
    if (['DEVLINKS', 'TAGS', 'CURRENT_TAGS'].includes(key)) return value.split(/[ :]/).filter(Boolean).sort().join(' ');
    // udevadm test prints a RUN program named without a path as written (udevd finds it in
    // /usr/lib/udev when it runs it); hotplugd's plan has the path it will run.
    if (key === 'RUN') return value.split('\n').filter((entry) => UNSUPPORTED_RUN_BUILTINS[entry] === undefined).map((entry) => entry.replace(/^(\/usr)?\/lib\/udev\//, '')).join('\n') || undefined;
    return value;
  };
  return [...keys].filter((key) => normal(key, udev[key]) !== normal(key, hotplugd[key]));
}

describe.runIf(canUseNamespaces() && haveUdev)('hotplugd against udevadm test, every device', () => {
  it("agrees on at least 98% of devices with Debian's rules, and differs only where documented", () => {
    mkdirSync('/run/udev', { recursive: true }); // the mount point (udev's package does not create it)
    const netns = new Netns('differential');
    cleanups.push(() => netns.delete());
    netns.ip('link', 'add', 'dv0', 'type', 'veth', 'peer', 'name', 'dv1');
    netns.ip('link', 'add', 'dbr0', 'type', 'bridge');
    const out = execFileSync('ip', ['netns', 'exec', netns.name, 'unshare', '--mount', '--propagation', 'private', 'sh', '-c',
      'mount -t tmpfs tmpfs /run/udev && exec node "$0" "$1" 8', HELPER, REPO], { encoding: 'utf8', timeout: 300_000, maxBuffer: 256 << 20 });
    const rows = out.trim().split('\n').map((line) => JSON.parse(line) as { devpath: string; udev: Properties; hotplugd: Properties });
    expect(rows.length).toBeGreaterThan(10);
    expect(rows.filter((r) => r.udev.error !== undefined || r.hotplugd.error !== undefined)).toEqual([]);

    const byProperty = new Map<string, string[]>();
    let identical = 0;
    for (const row of rows) {
      const keys = differences(row.udev, row.hotplugd);
      if (keys.length === 0) identical++;
      for (const key of keys) byProperty.set(key, [...(byProperty.get(key) ?? []), row.devpath]);
    }
    const share = identical / rows.length;
    console.log(`hotplugd vs udevadm test: ${identical}/${rows.length} devices identical (${(100 * share).toFixed(1)}%)`);
    for (const [key, devices] of byProperty) console.log(`  ${key}: ${devices.length} devices differ (${ACCEPTED[key] ?? 'NOT ACCEPTED'})`, ACCEPTED[key] ? '' : rows.filter((r) => devices.includes(r.devpath)).map((r) => JSON.stringify({ devpath: r.devpath, udev: r.udev[key], hotplugd: r.hotplugd[key] })).join('; '));
    expect([...byProperty.keys()].filter((key) => ACCEPTED[key] === undefined)).toEqual([]);
    expect(share).toBeGreaterThanOrEqual(0.98);
  }, 300_000);
});
