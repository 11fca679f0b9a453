// net_setup_link with a real .link file: an interface created in a network namespace is
// renamed as the file says, through udev's own rule lines, and the rename is recorded. The
// daemon runs in a private mount namespace with its own /etc/systemd/network.
import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, DaemonProcess, Netns, canUseNamespaces, makeTempDir, readHistory, waitFor } from '../helpers/netns.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

// The lines of Debian's 80-net-setup-link.rules that name interfaces.
const RULES = `SUBSYSTEM!="net", GOTO="net_setup_link_end"
ACTION!="add", GOTO="net_setup_link_end"
IMPORT{builtin}="path_id"
IMPORT{builtin}="net_setup_link"
NAME=="", ENV{ID_NET_NAME}!="", NAME="$env{ID_NET_NAME}"
LABEL="net_setup_link_end"
`;

/** Runs a daemon whose /etc/systemd/network holds only `linkFile` (a tmpfs in its own mount namespace). */
async function startWithLinkFile(prefix: string, linkFile: string): Promise<{ netns: Netns; daemon: DaemonProcess; dir: string }> {
  const dir = makeTempDir(prefix);
  cleanups.push(() => dir.remove());
  const netns = new Netns(prefix);
  cleanups.push(() => netns.delete());
  mkdirSync(join(dir.path, 'rules.d'));
  writeFileSync(join(dir.path, 'rules.d', '80-net-setup-link.rules'), RULES);
  writeFileSync(join(dir.path, '10-board.link'), linkFile);
  mkdirSync('/etc/systemd/network', { recursive: true });
  const launcher = ['unshare', '--mount', '--propagation', 'private', 'sh', '-c',
    'mount -t tmpfs tmpfs /etc/systemd/network && cp "$0" /etc/systemd/network/ && exec "$@"', join(dir.path, '10-board.link')];
  const daemon = new DaemonProcess(netns, join(dir.path, 'history.db'), ['--no-coldplug', '--no-watch', '--rules-dir', join(dir.path, 'rules.d')], process.env, launcher);
  cleanups.push(() => daemon.kill());
  await daemon.waitForLog('hotplugd started');
  return { netns, daemon, dir: dir.path };
}

function actionsOf(dbPath: string, kinds: string[]): { kind: string; target: string; ok: number }[] {
  const db = new Database(dbPath, { readonly: true });
  try {
    return db.prepare(`SELECT kind, target, ok FROM actions WHERE kind IN (${kinds.map(() => '?').join(',')}) ORDER BY id`).all(...kinds) as never;
  } finally {
    db.close();
  }
}

const haveUdevadm = ['/usr/bin/udevadm', '/bin/udevadm'].some((path) => existsSync(path));

describe.skipIf(!canUseNamespaces())('systemd .link files', () => {
  it('rename an interface as the matching file says, recorded in the history', async () => {
    // /etc/systemd/network is the daemon's own: a tmpfs holding the test's file.
    const { netns, daemon } = await startWithLinkFile('linkfiles', '[Match]\nOriginalName=renme0\nDriver=veth\n\n[Link]\nNamePolicy=\nName=uplink0\n');

    netns.ip('link', 'add', 'renme0', 'type', 'veth', 'peer', 'name', 'other0');
    await waitFor(() => netns.ip('-o', 'link', 'show').includes(' uplink0@'), 20_000, 'the rename to uplink0');
    expect(netns.ip('-o', 'link', 'show')).toMatch(/ other0@uplink0:/);
    await waitFor(() => readHistory(daemon.dbPath).some((e) => e.action === 'move' && e.properties.INTERFACE === 'uplink0'), 20_000, 'the move event');
    const add = readHistory(daemon.dbPath).find((e) => e.action === 'add' && e.properties.INTERFACE === 'renme0')!;
    expect(add).toBeDefined();
    expect(actionsOf(daemon.dbPath, ['rename']).map(({ target, ok }) => ({ target, ok }))).toEqual([{ target: 'renme0 -> uplink0', ok: 1 }]);
  });

  it.runIf(haveUdevadm || process.env.CI === 'true')('set the MAC address udevd sets and the alternative names, recorded in the history', async () => {
    const { netns, daemon, dir } = await startWithLinkFile('linkmac', '[Match]\nOriginalName=macme0\n\n[Link]\nNamePolicy=keep\nMACAddressPolicy=persistent\nAlternativeName=board-uplink uplink-a\n');
    netns.ip('link', 'add', 'macme0', 'type', 'veth', 'peer', 'name', 'macpeer0');
    await waitFor(() => netns.ip('link', 'show', 'dev', 'macme0').includes('altname uplink-a'), 20_000, 'the alternative names');
    const shown = netns.ip('link', 'show', 'dev', 'macme0');
    expect(shown).toContain('altname board-uplink');
    const mac = /link\/ether (\S+)/.exec(shown)![1];

    // The oracle: udevd's own builtin (which sets what it plans) on a veth of the same name
    // in another namespace, under the stock 99-default.link (MACAddressPolicy=persistent).
    // Before it, hotplugd's dry run there plans that address and sets nothing.
    const oracle = new Netns('linkmac-udev');
    cleanups.push(() => oracle.delete());
    oracle.ip('link', 'add', 'macme0', 'type', 'veth', 'peer', 'name', 'macpeer0');
    const macOf = (ns: Netns) => /link\/ether (\S+)/.exec(ns.ip('link', 'show', 'dev', 'macme0'))![1];
    const kernelMac = macOf(oracle);
    const dry = JSON.parse(oracle.run(process.execPath, CLI, 'test', '--json', '--rules-dir', join(dir, 'rules.d'), '/sys/class/net/macme0')) as { interface: { mac: string } | null };
    expect(macOf(oracle)).toBe(kernelMac);
    oracle.run('udevadm', 'test-builtin', 'net_setup_link', '/sys/class/net/macme0');
    expect(macOf(oracle)).not.toBe(kernelMac);
    expect(dry.interface?.mac).toBe(macOf(oracle));
    expect(mac).toBe(macOf(oracle));

    const recorded = () => actionsOf(daemon.dbPath, ['mac-address', 'altname']).filter((a) => a.target.startsWith('macme0'));
    await waitFor(() => recorded().length === 2, 20_000, 'the recorded settings');
    expect(recorded()).toEqual([
      { kind: 'mac-address', target: `macme0 ${mac}`, ok: 1 },
      { kind: 'altname', target: 'macme0 board-uplink uplink-a', ok: 1 },
    ]);
  });
});
