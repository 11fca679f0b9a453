// Coldplug over a fake sysfs tree built from the USB fixtures: every device once.
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DaemonProcess, Netns, canUseNamespaces, makeTempDir, readHistory } from '../helpers/netns.js';
import { buildFakeSysfs, mergeSysfs } from '../helpers/fake-sysfs.js';
import { loadUeventFixtures } from '../helpers/fixtures.js';
import { parseUeventFile } from '../../src/uevent/sysfs.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

describe.skipIf(!canUseNamespaces())('coldplug', () => {
  const tree = mergeSysfs(loadUeventFixtures().map((f) => f.sysfs));

  async function runOnce(args: string[]) {
    const fake = buildFakeSysfs(tree);
    cleanups.push(() => fake.remove());
    const dir = makeTempDir('coldplug');
    cleanups.push(() => dir.remove());
    // In a namespace of its own, so no host network device event lands in this history.
    const netns = new Netns('cold');
    cleanups.push(() => netns.delete());
    const daemon = new DaemonProcess(netns, join(dir.path, 'history.db'), ['--sysfs', fake.root, ...args]);
    cleanups.push(() => daemon.kill());
    const started = await daemon.waitForLog('hotplugd started');
    expect(await daemon.stop()).toBe(0);
    return { fake, started, records: readHistory(daemon.dbPath) };
  }

  it('records every device of the tree once, as add with source coldplug', async () => {
    const { fake, started, records } = await runOnce([]);
    const coldplug = records.filter((r) => r.source === 'coldplug');
    expect(fake.devices.length).toBeGreaterThanOrEqual(30);
    expect(started.coldplugged).toBe(fake.devices.length);
    expect(coldplug.map((r) => r.devpath).sort()).toEqual([...fake.devices].sort());
    for (const record of coldplug) {
      const entry = tree[record.devpath]!;
      expect(record.action).toBe('add');
      expect(record.seqnum).toBeNull();
      const fromFile = entry.uevent === undefined ? {} : parseUeventFile(entry.uevent);
      expect(record.properties).toEqual({ ACTION: 'add', DEVPATH: record.devpath, SUBSYSTEM: record.subsystem, ...fromFile });
      if (entry._subsystem) expect(record.subsystem).toBe(entry._subsystem);
    }
  });

  it('records nothing at start with --no-coldplug', async () => {
    const { started, records } = await runOnce(['--no-coldplug']);
    expect(started.coldplugged).toBe(0);
    expect(records.filter((r) => r.source === 'coldplug')).toEqual([]);
  });
});
