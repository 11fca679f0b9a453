// The shipped link examples, verbatim, on real interfaces in a network namespace: a DHCP
// client (busybox udhcpc) that runs exactly while a cable is in, and an uplink failover
// route that follows a held carrier loss.
import Database from 'better-sqlite3';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { canUseNamespaces, DaemonProcess, makeTempDir, Netns, waitFor } from '../helpers/netns.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

const EXAMPLES = join(import.meta.dirname, '..', '..', 'examples');

async function startWithExample(prefix: string, example: string): Promise<{ netns: Netns; daemon: DaemonProcess }> {
  const netns = new Netns(prefix);
  cleanups.push(() => netns.delete());
  const dir = makeTempDir(prefix);
  cleanups.push(() => dir.remove());
  mkdirSync(join(dir.path, 'rules.d'));
  copyFileSync(join(EXAMPLES, example), join(dir.path, 'rules.d', example));
  const daemon = new DaemonProcess(netns, join(dir.path, 'history.db'), ['--no-coldplug', '--no-watch', '--rules-dir', join(dir.path, 'rules.d')]);
  cleanups.push(() => daemon.kill());
  await daemon.waitForLog('hotplugd started');
  return { netns, daemon };
}

function actionRows(dbPath: string, kinds: string[]): { kind: string; target: string; ok: number }[] {
  const db = new Database(dbPath, { readonly: true });
  try {
    return db.prepare(`SELECT kind, target, ok FROM actions WHERE kind IN (${kinds.map(() => '?').join(',')}) ORDER BY id`).all(...kinds) as never;
  } finally {
    db.close();
  }
}

const alive = (pid: number) => existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.startsWith('Z');

describe.skipIf(!canUseNamespaces())('the shipped link examples', () => {
  it.runIf(existsSync('/sbin/udhcpc') || process.env.CI === 'true')('dhcp-client.yaml: udhcpc runs while the cable is in', async () => {
    const { netns, daemon } = await startWithExample('exdhcp', 'dhcp-client.yaml');
    netns.ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'swp0');
    netns.ip('link', 'set', 'eth0', 'up');
    netns.ip('link', 'set', 'swp0', 'up'); // the cable goes in
    await waitFor(() => actionRows(daemon.dbPath, ['job-start']).length === 1, 20_000, 'udhcpc started');
    const status = (await daemon.cli(netns, 'status')).stdout;
    const job = /running\s+pid (\d+)\s+restarts 0\s+\/devices\/virtual\/net\/eth0\s+\["\/sbin\/udhcpc","-f","-R","-i","eth0"\]\s+\(while the link is up\)/.exec(status);
    expect(job, status).not.toBeNull();
    // Boards watch the daemon's memory in the same place.
    expect(status).toMatch(/^memory: [\d.]+ MiB resident; JavaScript heap [\d.]+ of [\d.]+ MiB, [\d.]+ MiB outside it$/m);
    const pid = Number(job![1]);
    expect(alive(pid)).toBe(true);
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(1, 6)).toEqual(['-f', '-R', '-i', 'eth0', '']);

    netns.ip('link', 'set', 'swp0', 'down'); // the cable comes out
    await waitFor(() => actionRows(daemon.dbPath, ['job-stop']).length === 1, 20_000, 'udhcpc stopped');
    await waitFor(() => !alive(pid), 10_000, 'the udhcpc process gone');
    expect(actionRows(daemon.dbPath, ['job-start', 'job-stop']).map((a) => a.kind)).toEqual(['job-start', 'job-stop']);
    expect(await daemon.stop()).toBe(0);
  });

  it('uplink-failover.yaml: the backup route follows a held carrier loss, and goes when the carrier is back', async () => {
    const { netns, daemon } = await startWithExample('exfail', 'uplink-failover.yaml');
    netns.ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'up0');
    netns.ip('link', 'add', 'wwan0', 'type', 'veth', 'peer', 'name', 'bk0');
    for (const name of ['eth0', 'up0', 'wwan0', 'bk0']) netns.ip('link', 'set', name, 'up');
    const backup = () => /^default dev wwan0 .*metric 5/m.test(netns.ip('route', 'show', 'default'));

    netns.ip('link', 'set', 'up0', 'down'); // the uplink's carrier goes...
    await waitFor(backup, 20_000, 'the backup route');
    netns.ip('link', 'set', 'up0', 'up'); // ...and comes back
    await waitFor(() => !backup(), 20_000, 'the backup route removed');
    // The route goes as the program runs; its row is committed just after.
    await waitFor(() => actionRows(daemon.dbPath, ['program']).length === 2, 10_000, 'both programs recorded');
    const runs = actionRows(daemon.dbPath, ['program', 'debounce']);
    // First, the carrier's coming at the start was cut short by the loss: cancelled.
    expect(runs.map((a) => `${a.kind} ${a.ok}`)).toEqual(['debounce 0', 'debounce 1', 'program 1', 'debounce 1', 'program 1']);
    expect(await daemon.stop()).toBe(0);
  }, 30_000);
});
