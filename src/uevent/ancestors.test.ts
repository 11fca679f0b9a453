import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir } from '../../test/helpers/netns.js';
import { AncestorCache } from './ancestors.js';
import { Sysfs } from './sysfs.js';

const USB = '/devices/usb1/1-1';
const TTY = `${USB}/1-1:1.0/ttyUSB0`;
const dir = makeTempDir('ancestors');
const device = (devpath: string, attrs: Record<string, string>) => {
  mkdirSync(join(dir.path, devpath), { recursive: true });
  writeFileSync(join(dir.path, devpath, 'uevent'), '');
  for (const [name, value] of Object.entries(attrs)) writeFileSync(join(dir.path, devpath, name), `${value}\n`);
};

beforeAll(() => {
  device('/devices/usb1', {});
  device(USB, { idVendor: '1a86' });
  device(`${USB}/1-1:1.0`, { bInterfaceNumber: '00' });
  device(TTY, {});
});
afterAll(() => dir.remove());

describe('AncestorCache', () => {
  it('shares ancestor views, and their reads, across events', () => {
    const sysfs = new Sysfs(dir.path);
    const cache = new AncestorCache(sysfs);
    const first = sysfs.device(TTY, cache).parents();
    expect(first.map((p) => p.devpath)).toEqual([`${USB}/1-1:1.0`, USB, '/devices/usb1']);
    expect(first[1]?.attribute('idVendor')).toBe('1a86');
    writeFileSync(join(dir.path, USB, 'idVendor'), '0403\n');
    const second = sysfs.device(TTY, cache).parents();
    expect(second[1]).toBe(first[1]);
    expect(second[1]?.attribute('idVendor')).toBe('1a86');
    // An event for the USB device drops its view: the next walk reads it again.
    cache.forget(USB, false);
    expect(sysfs.device(TTY, cache).parents()[1]?.attribute('idVendor')).toBe('0403');
  });

  it('on remove forgets the subtree, so a re-plugged device is read afresh', () => {
    const sysfs = new Sysfs(dir.path);
    const cache = new AncestorCache(sysfs);
    sysfs.device(`${TTY}/tty/ttyUSB0`, cache).parents();
    const before = cache.size;
    cache.forget(USB, true);
    expect(cache.size).toBe(before - 4); // USB, its interface, ttyUSB0 and the tty directory (not a device)
    rmSync(join(dir.path, `${USB}/1-1:1.0`), { recursive: true });
    expect(sysfs.device(TTY, cache).parents().map((p) => p.devpath)).toEqual([USB, '/devices/usb1']);
  });

  it('starts over when full', () => {
    const sysfs = new Sysfs(dir.path);
    const cache = new AncestorCache(sysfs, 2);
    sysfs.device(TTY, cache).parents();
    expect(cache.size).toBeLessThanOrEqual(2);
  });
});
