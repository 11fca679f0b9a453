// The history survives what a board does to it: the daemon killed with SIGKILL mid-storm,
// a full disk, a corrupt file. Real kernel events in a namespace, a real SQLite file.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { DaemonProcess, Netns, canUseNamespaces, countEvents, makeTempDir, readIncidents, startRuleDaemon, waitFor } from '../helpers/netns.js';

const LO = '/devices/virtual/net/lo';
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

async function status(daemon: DaemonProcess, netns: Netns): Promise<Record<string, number>> {
  const result = await daemon.cli(netns, 'status', '--json');
  return (JSON.parse(result.stdout) as { counters: Record<string, number> }).counters;
}

describe.skipIf(!canUseNamespaces())('history durability', () => {
  it('keeps a sound database with every committed event when the daemon is killed with SIGKILL mid-storm', async () => {
    const { netns, daemon } = await startRuleDaemon('kill9', cleanups);
    const storm = netns.startUevents('/sys/class/net/lo/uevent', 'change');
    cleanups.push(() => storm.child.kill('SIGKILL'));
    await waitFor(() => countEvents(daemon.dbPath, `devpath = '${LO}'`) >= 2000, 30_000, 'a storm under way');
    const committedBeforeKill = countEvents(daemon.dbPath, '1');
    daemon.signal('SIGKILL');
    await waitFor(() => daemon.child.exitCode !== null || daemon.child.signalCode !== null, 10_000, 'the daemon to die');
    await storm.stop();

    const db = new Database(daemon.dbPath);
    try {
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      const { n, first, last } = db.prepare('SELECT count(*) AS n, min(id) AS first, max(id) AS last FROM events').get() as { n: number; first: number; last: number };
      expect(n).toBeGreaterThanOrEqual(committedBeforeKill);
      // Whole batches or nothing: no holes in the ids.
      expect([first, last]).toEqual([1, n]);
      expect(db.prepare('SELECT count(*) AS n FROM events WHERE device_id IS NULL').get()).toEqual({ n: 0 });
    } finally {
      db.close();
    }
    // A new daemon carries on in the same file.
    const again = new DaemonProcess(netns, daemon.dbPath, ['--no-coldplug', '--no-watch']);
    cleanups.push(() => again.kill());
    await again.waitForLog('hotplugd started');
    netns.writeUevents('/sys/class/net/lo/uevent', 'change', 10);
    expect((await again.cli(netns, 'settle')).code).toBe(0);
    expect(await again.stop()).toBe(0);
  });

  it('goes on handling events while the disk is full, and records them all once there is room', async () => {
    const dir = makeTempDir('full');
    cleanups.push(() => dir.remove());
    const mount = join(dir.path, 'small');
    mkdirSync(mount);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mount]);
    cleanups.push(() => execFileSync('umount', ['-l', mount]));
    const netns = new Netns('full');
    cleanups.push(() => netns.delete());
    const daemon = new DaemonProcess(netns, join(mount, 'history.db'), ['--no-coldplug', '--no-watch']);
    cleanups.push(() => daemon.kill());
    await daemon.waitForLog('hotplugd started');
    netns.writeUevents('/sys/class/net/lo/uevent', 'change', 10);
    expect((await daemon.cli(netns, 'settle')).code).toBe(0);
    await waitFor(() => countEvents(daemon.dbPath, '1') === 10, 5000, 'the first events committed');

    // Fill the file system to the last byte.
    const filler = join(mount, 'filler');
    try {
      execFileSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=64k'], { stdio: 'ignore' });
    } catch {
      // dd ends with ENOSPC: that is the point
    }
    netns.writeUevents('/sys/class/net/lo/uevent', 'change', 3000);
    expect((await daemon.cli(netns, 'settle', '--timeout', '30s')).code).toBe(0);
    const full = await status(daemon, netns);
    expect(full.processed).toBe(3010);
    expect(full.recordFailures).toBeGreaterThan(0);
    expect(full.recordsWaiting).toBeGreaterThan(0);
    expect(daemon.logs.some((l) => /Failed to record .* history rows \(kept, retrying\)/.test(String(l.msg)))).toBe(true);

    rmSync(filler);
    await waitFor(() => countEvents(daemon.dbPath, '1') === 3010, 60_000, 'recording to resume');
    const after = await status(daemon, netns);
    expect(after).toMatchObject({ recordsWaiting: 0, recordsLost: 0 });
    expect(daemon.log('Recording history works again')).toBeDefined();
    expect(await daemon.stop()).toBe(0);
  });

  it('moves a corrupt database aside, says so loudly, and records in a new one', async () => {
    const dir = makeTempDir('corrupt');
    cleanups.push(() => dir.remove());
    const dbPath = join(dir.path, 'history.db');
    writeFileSync(dbPath, Buffer.alloc(64 * 1024, 'this is not an SQLite database. '));
    const netns = new Netns('corrupt');
    cleanups.push(() => netns.delete());
    const daemon = new DaemonProcess(netns, dbPath, ['--no-coldplug', '--no-watch']);
    cleanups.push(() => daemon.kill());
    await daemon.waitForLog('hotplugd started');
    const loud = daemon.logs.find((l) => /is corrupt .*: moved to .*recording continues in a new file/.test(String(l.msg)));
    expect(loud?.level).toBe(50);
    const aside = readdirSync(dir.path).filter((f) => f.startsWith('history.db.corrupt-'));
    expect(aside).toHaveLength(1);
    netns.writeUevents('/sys/class/net/lo/uevent', 'change', 5);
    expect((await daemon.cli(netns, 'settle')).code).toBe(0);
    expect(await daemon.stop()).toBe(0);
    expect(countEvents(dbPath, `devpath = '${LO}'`)).toBe(5);
    expect(readIncidents(dbPath)).toEqual([expect.objectContaining({ kind: 'database-replaced', detail: expect.objectContaining({ movedTo: join(dir.path, aside[0]!), when: 'at start' }) })]);
    expect(existsSync(join(dir.path, aside[0]!))).toBe(true);
  });
});
