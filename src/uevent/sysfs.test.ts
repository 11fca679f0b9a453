import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sysfs, parseUeventFile } from './sysfs.js';
import { buildFakeSysfs, mergeSysfs, type FakeSysfs } from '../../test/helpers/fake-sysfs.js';
import { loadUeventFixtures } from '../../test/helpers/fixtures.js';

const fixtures = loadUeventFixtures();
const storage = fixtures.find((f) => f.scenario === 'usb-mass-storage')!;
const SDB1 = '/devices/pci0000:00/0000:00:1d.7/usb5/5-1/5-1:1.0/host7/target7:0:0/7:0:0:0/block/sdb/sdb1';
const USB_DEVICE = '/devices/pci0000:00/0000:00:1d.7/usb5/5-1';

let fake: FakeSysfs;
let sysfs: Sysfs;

beforeAll(() => {
  fake = buildFakeSysfs(mergeSysfs(fixtures.map((f) => f.sysfs)));
  sysfs = new Sysfs(fake.root);
});
afterAll(() => fake.remove());

describe('Sysfs over a tree built from the USB fixtures', () => {
  it('reads the uevent file of a partition', () => {
    expect(sysfs.readUevent(SDB1)).toEqual({ MAJOR: '8', MINOR: '17', DEVTYPE: 'partition', DEVNAME: 'sdb1' });
  });

  it('reads subsystem and driver from their links', () => {
    expect(sysfs.subsystem(SDB1)).toBe('block');
    expect(sysfs.driver(SDB1)).toBeUndefined();
    expect(sysfs.subsystem(`${USB_DEVICE}/5-1:1.0`)).toBe('usb');
    expect(sysfs.driver(`${USB_DEVICE}/5-1:1.0`)).toBe('usb-storage');
  });

  it('reads attributes without their trailing newline, and refuses paths that leave the device', () => {
    const entry = storage.sysfs![USB_DEVICE]!;
    expect(sysfs.attribute(USB_DEVICE, 'idVendor')).toBe(entry.idVendor);
    expect(sysfs.attribute(USB_DEVICE, 'no-such-attribute')).toBeUndefined();
    expect(sysfs.attribute(USB_DEVICE, '../5-1/idVendor')).toBeUndefined();
    expect(sysfs.attribute(USB_DEVICE, '/etc/passwd')).toBeUndefined();
    expect(sysfs.pathOf('/devices/../../etc')).toBeNull();
  });

  it('lists the ancestors that are devices, nearest first', () => {
    expect(sysfs.parents(SDB1)).toEqual([
      '/devices/pci0000:00/0000:00:1d.7/usb5/5-1/5-1:1.0/host7/target7:0:0/7:0:0:0/block/sdb',
      '/devices/pci0000:00/0000:00:1d.7/usb5/5-1/5-1:1.0/host7/target7:0:0/7:0:0:0',
      '/devices/pci0000:00/0000:00:1d.7/usb5/5-1/5-1:1.0/host7/target7:0:0',
      '/devices/pci0000:00/0000:00:1d.7/usb5/5-1/5-1:1.0/host7',
      '/devices/pci0000:00/0000:00:1d.7/usb5/5-1/5-1:1.0',
      USB_DEVICE,
      '/devices/pci0000:00',
    ]);
  });

  it('enumerates exactly the devices with a subsystem, parents before children', () => {
    const found = sysfs.enumerate();
    expect(new Set(found)).toEqual(new Set(fake.devices));
    expect(found).toHaveLength(fake.devices.length);
    for (const devpath of found) {
      for (const parent of sysfs.parents(devpath)) {
        if (found.includes(parent)) expect(found.indexOf(parent)).toBeLessThan(found.indexOf(devpath));
      }
    }
  });

  it('synthesises the add event the kernel would send', () => {
    const event = sysfs.synthesizeEvent(SDB1, 'add', 'coldplug', 1000)!;
    expect(Object.entries(event.properties)).toEqual([
      ['ACTION', 'add'], ['DEVPATH', SDB1], ['SUBSYSTEM', 'block'],
      ['MAJOR', '8'], ['MINOR', '17'], ['DEVTYPE', 'partition'], ['DEVNAME', 'sdb1'],
    ]);
    expect(event).toMatchObject({ action: 'add', subsystem: 'block', major: 8, minor: 17, devname: 'sdb1', source: 'coldplug' });
    expect(sysfs.synthesizeEvent('/devices/does/not/exist', 'add', 'coldplug')).toBeUndefined();
  });

  it('caches attribute reads per device view and walks parents', () => {
    const view = sysfs.device(`${USB_DEVICE}/5-1:1.0`);
    expect(view.kernel).toBe('5-1:1.0');
    expect(view.driver).toBe('usb-storage');
    const parent = view.parents()[0]!;
    expect(parent.devpath).toBe(USB_DEVICE);
    expect(parent.attribute('idVendor')).toBe(storage.sysfs![USB_DEVICE]!.idVendor);
    expect(view.parents()[0]).toBe(parent);
  });
});

describe('parseUeventFile', () => {
  it('splits at the first = and ignores lines without one', () => {
    expect(parseUeventFile('A=1\nB=x=y\n\nJUNK\n')).toEqual({ A: '1', B: 'x=y' });
  });
});

describe('links read as attributes, as udev reads them', () => {
  it('only driver, subsystem and module read as their target; other links are no attribute', () => {
    const root = mkdtempSync(join(tmpdir(), 'hotplugd-links-'));
    try {
      const pci = '/devices/pci0000:00/0000:00:03.0';
      const net = `${pci}/virtio2/net/eth0`;
      mkdirSync(join(root, net), { recursive: true });
      mkdirSync(join(root, 'bus/virtio/drivers/virtio_net'), { recursive: true });
      writeFileSync(join(root, pci, 'device'), '0x1041\n');
      writeFileSync(join(root, net, 'uevent'), 'INTERFACE=eth0\n');
      symlinkSync('../../../virtio2', join(root, net, 'device'));
      symlinkSync('../../../../bus/virtio/drivers/virtio_net', join(root, pci, 'virtio2', 'driver'));
      const view = new Sysfs(root);
      expect(view.attribute(net, 'device')).toBeUndefined();
      expect(view.attribute(`${pci}/virtio2`, 'driver')).toBe('virtio_net');
      expect(view.attribute(pci, 'device')).toBe('0x1041');
      // udev compares the whole name: device/driver is a link, but not "driver".
      expect(view.attribute(net, 'device/driver')).toBeUndefined();
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('reads a value longer than a page whole, a directory as no attribute, and fails loudly on what is not an answer', () => {
    const root = mkdtempSync(join(tmpdir(), 'hotplugd-attrs-'));
    try {
      const dev = '/devices/virtual/misc/x';
      mkdirSync(join(root, dev, 'power'), { recursive: true });
      writeFileSync(join(root, dev, 'uevent'), '');
      writeFileSync(join(root, dev, 'long'), `${'x'.repeat(10_000)}\n`);
      writeFileSync(join(root, dev, 'page'), 'y'.repeat(4096));
      writeFileSync(join(root, dev, 'empty'), '');
      const view = new Sysfs(root);
      expect(view.attribute(dev, 'long')).toBe('x'.repeat(10_000));
      expect(view.attribute(dev, 'page')).toBe('y'.repeat(4096));
      expect(view.attribute(dev, 'empty')).toBe('');
      expect(view.attribute(dev, 'power')).toBeUndefined();
      expect(view.attribute(dev, 'missing')).toBeUndefined();
      expect(view.attribute(dev, 'power/missing')).toBeUndefined();
      expect(view.attribute(dev, 'long/below')).toBeUndefined(); // ENOTDIR
      // A name longer than the system allows is no answer about the device: an error, not "absent".
      expect(() => view.attribute(dev, 'n'.repeat(300))).toThrow(/ENAMETOOLONG/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
