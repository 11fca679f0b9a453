// udev rules in the daemon on real kernel events, and udev's database proven with the real
// udevadm (Debian's udev package): it reads /run/udev — here a private bind mount of the
// daemon's database directory — and shows the properties and tags hotplugd's rules set.
import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { canUseNamespaces, DaemonProcess, makeTempDir, Netns } from '../helpers/netns.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

const UDEV_RULES = `# udev syntax, in hotplugd's own rules directory
SUBSYSTEM!="net", GOTO="end"
ACTION=="add|change", KERNEL=="hv*", ENV{HP_SEEN}="udev-rules", TAG+="hotplugd_test"
ACTION=="add|change", KERNEL=="hv*", IMPORT{program}="/bin/echo HP_IMPORTED=from-program"
ACTION=="add|change", KERNEL=="hv*", PROGRAM=="/bin/echo -n one two", ENV{HP_SECOND}="%c{2}"
LABEL="end"
`;

describe.skipIf(!canUseNamespaces())('udev rules and udev database in the daemon', () => {
  it('runs .rules on real events and writes /run/udev/data that udevadm info reads', async () => {
    const netns = new Netns('udevdb');
    cleanups.push(() => netns.delete());
    const dir = makeTempDir('udevdb');
    cleanups.push(() => dir.remove());
    const rulesDir = join(dir.path, 'rules.d');
    const udevDir = join(dir.path, 'run-udev');
    mkdirSync(rulesDir);
    writeFileSync(join(rulesDir, '50-test.rules'), UDEV_RULES);
    const real = new DaemonProcess(netns, join(dir.path, 'history.db'), ['--no-coldplug', '--no-watch', '--rules-dir', rulesDir, '--udev-db', udevDir]);
    cleanups.push(() => real.kill());
    await real.waitForLog('hotplugd started');

    netns.ip('link', 'add', 'hva0', 'type', 'veth', 'peer', 'name', 'hvb0');
    expect((await real.cli(netns, 'settle', '--timeout', '20s')).code).toBe(0);
    const ifindex = netns.run('cat', '/sys/class/net/hva0/ifindex').trim();
    const entry = readFileSync(join(udevDir, 'data', `n${ifindex}`), 'utf8');
    expect(entry).toContain('E:HP_SEEN=udev-rules\n');
    expect(entry).toContain('E:HP_IMPORTED=from-program\n');
    expect(entry).toContain('E:HP_SECOND=two\n');
    expect(entry).toContain('G:hotplugd_test\n');
    expect(entry.endsWith('V:1\n')).toBe(true);
    expect(readFileSync(join(udevDir, 'tags', 'hotplugd_test', `n${ifindex}`), 'utf8')).toBe('');

    // The real udevadm, with /run/udev replaced (in a private mount namespace) by the daemon's directory.
    mkdirSync('/run/udev', { recursive: true });
    const script = `mount --bind "$1" /run/udev && exec udevadm info --query=all --path=/sys/class/net/hva0`;
    const info = execFileSync('ip', ['netns', 'exec', netns.name, 'unshare', '--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', udevDir], { encoding: 'utf8' });
    expect(info).toContain('E: HP_SEEN=udev-rules');
    expect(info).toContain('E: HP_IMPORTED=from-program');
    expect(info).toContain('E: HP_SECOND=two');
    expect(info).toMatch(/G: hotplugd_test|E: TAGS=:hotplugd_test:/);

    netns.ip('link', 'del', 'hva0');
    expect((await real.cli(netns, 'settle', '--timeout', '20s')).code).toBe(0);
    expect(() => readFileSync(join(udevDir, 'data', `n${ifindex}`))).toThrow(/ENOENT/);
    expect(await real.stop()).toBe(0);
  }, 60_000);

  it('keeps tags across events (TAGS, G:) beside the event\'s own (CURRENT_TAGS, Q:), as udev since v247', async () => {
    const netns = new Netns('udevtags');
    cleanups.push(() => netns.delete());
    const dir = makeTempDir('udevtags');
    cleanups.push(() => dir.remove());
    const rulesDir = join(dir.path, 'rules.d');
    const udevDir = join(dir.path, 'run-udev');
    mkdirSync(rulesDir);
    writeFileSync(join(rulesDir, '50-tags.rules'), 'SUBSYSTEM=="net", ACTION=="add", TAG+="seen_added"\nSUBSYSTEM=="net", ACTION=="change", TAG+="seen_changed"\n');
    const daemon = new DaemonProcess(netns, join(dir.path, 'history.db'), ['--no-coldplug', '--no-watch', '--rules-dir', rulesDir, '--udev-db', udevDir]);
    cleanups.push(() => daemon.kill());
    await daemon.waitForLog('hotplugd started');
    netns.ip('link', 'add', 'tga0', 'type', 'veth', 'peer', 'name', 'tgb0');
    expect((await daemon.cli(netns, 'settle', '--timeout', '20s')).code).toBe(0);
    netns.writeUevents('/sys/class/net/tga0/uevent', 'change', 1);
    expect((await daemon.cli(netns, 'settle', '--timeout', '20s')).code).toBe(0);

    const db = new Database(daemon.dbPath, { readonly: true });
    const change = db.prepare("SELECT result FROM events WHERE action = 'change' AND json_extract(properties, '$.INTERFACE') = 'tga0'").get() as { result: string };
    db.close();
    const result = JSON.parse(change.result) as { properties: Record<string, string> };
    expect(result.properties.TAGS).toBe(':seen_added:seen_changed:');
    expect(result.properties.CURRENT_TAGS).toBe(':seen_changed:');
    const ifindex = netns.run('cat', '/sys/class/net/tga0/ifindex').trim();
    const entry = readFileSync(join(udevDir, 'data', `n${ifindex}`), 'utf8');
    expect(entry.split('\n').filter((l) => /^[GQ]:/.test(l)).sort()).toEqual(['G:seen_added', 'G:seen_changed', 'Q:seen_changed']);
    expect(readFileSync(join(udevDir, 'tags', 'seen_added', `n${ifindex}`), 'utf8')).toBe('');

    mkdirSync('/run/udev', { recursive: true });
    const script = 'mount --bind "$1" /run/udev && exec udevadm info --query=all --path=/sys/class/net/tga0';
    const info = execFileSync('ip', ['netns', 'exec', netns.name, 'unshare', '--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', udevDir], { encoding: 'utf8' });
    // udevadm lists the tags in its own (hash) order.
    expect(/^E: TAGS=(.*)$/m.exec(info)?.[1]?.split(':').filter(Boolean).sort()).toEqual(['seen_added', 'seen_changed']);
    expect(info).toContain('E: CURRENT_TAGS=:seen_changed:');
  }, 60_000);
});
