// net_setup_link with a real .link file: an interface created in a network namespace is
// renamed as the file says, through udev's own rule lines, and the rename is recorded. The
// daemon runs in a private mount namespace with its own /etc/systemd/network.
import Database from 'better-sqlite3';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DaemonProcess, Netns, canUseNamespaces, makeTempDir, readHistory, waitFor } from '../helpers/netns.js';

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

describe.skipIf(!canUseNamespaces())('systemd .link files', () => {
  it('rename an interface as the matching file says, recorded in the history', async () => {
    const dir = makeTempDir('linkfiles');
    cleanups.push(() => dir.remove());
    const netns = new Netns('linkfiles');
    cleanups.push(() => netns.delete());
    mkdirSync(join(dir.path, 'rules.d'));
    writeFileSync(join(dir.path, 'rules.d', '80-net-setup-link.rules'), RULES);
    writeFileSync(join(dir.path, '10-board.link'), '[Match]\nOriginalName=renme0\nDriver=veth\n\n[Link]\nNamePolicy=\nName=uplink0\n');
    // /etc/systemd/network is the daemon's own: a tmpfs holding the test's file.
    mkdirSync('/etc/systemd/network', { recursive: true });
    const launcher = ['unshare', '--mount', '--propagation', 'private', 'sh', '-c',
      'mount -t tmpfs tmpfs /etc/systemd/network && cp "$0" /etc/systemd/network/ && exec "$@"', join(dir.path, '10-board.link')];
    const daemon = new DaemonProcess(netns, join(dir.path, 'history.db'), ['--no-coldplug', '--no-watch', '--rules-dir', join(dir.path, 'rules.d')], process.env, launcher);
    cleanups.push(() => daemon.kill());
    await daemon.waitForLog('hotplugd started');

    netns.ip('link', 'add', 'renme0', 'type', 'veth', 'peer', 'name', 'other0');
    await waitFor(() => netns.ip('-o', 'link', 'show').includes(' uplink0@'), 20_000, 'the rename to uplink0');
    expect(netns.ip('-o', 'link', 'show')).toMatch(/ other0@uplink0:/);
    await waitFor(() => readHistory(daemon.dbPath).some((e) => e.action === 'move' && e.properties.INTERFACE === 'uplink0'), 20_000, 'the move event');
    const add = readHistory(daemon.dbPath).find((e) => e.action === 'add' && e.properties.INTERFACE === 'renme0')!;
    expect(add).toBeDefined();
    const db = new Database(daemon.dbPath, { readonly: true });
    try {
      const rename = db.prepare("SELECT target, ok FROM actions WHERE kind = 'rename'").all();
      expect(rename).toEqual([{ target: 'renme0 -> uplink0', ok: 1 }]);
    } finally {
      db.close();
    }
  });
});
