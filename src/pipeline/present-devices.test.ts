import { afterEach, describe, expect, it } from 'vitest';
import { PresentDevices } from './present-devices.js';
import { Sysfs } from '../uevent/sysfs.js';
import { eventFromProperties, createProperties } from '../uevent/event.js';
import { buildFakeSysfs, type FakeSysfs } from '../../test/helpers/fake-sysfs.js';

const NET = '/devices/virtual/net';
let fake: FakeSysfs | undefined;
afterEach(() => fake?.remove());

function kernelEvent(action: string, devpath: string, extra: Record<string, string> = {}) {
  const properties = Object.assign(createProperties(), { ACTION: action, DEVPATH: devpath, SUBSYSTEM: 'net', ...extra });
  return eventFromProperties(properties, 0, 'kernel');
}

describe('PresentDevices', () => {
  it('tells what appeared and what vanished behind its back', () => {
    fake = buildFakeSysfs({
      [`${NET}/lo`]: { _subsystem: 'net', uevent: 'INTERFACE=lo\nIFINDEX=1' },
      [`${NET}/v0`]: { _subsystem: 'net', uevent: 'INTERFACE=v0\nIFINDEX=2' },
      [`${NET}/v0/queues/rx-0`]: { _subsystem: 'queues' },
      [`${NET}/br0`]: { _subsystem: 'net', uevent: 'INTERFACE=br0\nIFINDEX=3' },
    });
    const sysfs = new Sysfs(fake.root);
    const registry = new PresentDevices();
    registry.seed(sysfs);
    expect(registry.size).toBe(4);

    // br0 goes away and v1 appears while we are not listening.
    fake.remove();
    fake = buildFakeSysfs({
      [`${NET}/lo`]: { _subsystem: 'net', uevent: 'INTERFACE=lo\nIFINDEX=1' },
      [`${NET}/v0`]: { _subsystem: 'net', uevent: 'INTERFACE=v0\nIFINDEX=2' },
      [`${NET}/v0/queues/rx-0`]: { _subsystem: 'queues' },
      [`${NET}/v1`]: { _subsystem: 'net', uevent: 'INTERFACE=v1\nIFINDEX=4' },
      [`${NET}/v1/queues/rx-0`]: { _subsystem: 'queues' },
    });
    const events = registry.diff(new Sysfs(fake.root), 5);
    expect(events.map((e) => [e.action, e.devpath, e.source])).toEqual([
      ['remove', `${NET}/br0`, 'resync'],
      ['add', `${NET}/v1`, 'resync'],
      ['add', `${NET}/v1/queues/rx-0`, 'resync'],
    ]);
    expect(events[0]!.properties).toMatchObject({ ACTION: 'remove', DEVPATH: `${NET}/br0`, SUBSYSTEM: 'net' });
    expect(events[1]!.properties).toMatchObject({ ACTION: 'add', INTERFACE: 'v1', IFINDEX: '4' });
  });

  it('follows add, move and remove events', () => {
    fake = buildFakeSysfs({ [`${NET}/lo`]: { _subsystem: 'net' } });
    const registry = new PresentDevices();
    registry.apply(kernelEvent('add', `${NET}/v0`, { SEQNUM: '1' }));
    registry.apply(kernelEvent('move', `${NET}/v9`, { DEVPATH_OLD: `${NET}/v0` }));
    expect(registry.has(`${NET}/v0`)).toBe(false);
    expect(registry.has(`${NET}/v9`)).toBe(true);
    // v9 is not in sysfs: the diff removes it, without the stale SEQNUM.
    const [removed] = registry.diff(new Sysfs(fake.root));
    expect(removed?.devpath).toBe(`${NET}/v9`);
    expect(removed?.properties.SEQNUM).toBeUndefined();
    registry.apply(kernelEvent('remove', `${NET}/v9`));
    expect(registry.size).toBe(0);
  });
});
