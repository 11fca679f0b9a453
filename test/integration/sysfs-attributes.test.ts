// Attributes of the real sysfs kept open (uevent/open-attributes.ts) answer what opening them
// again would: the value now, none once the device went, and the new device's after it came back.
import { afterEach, describe, expect, it } from 'vitest';
import { canUseNamespaces, Netns } from '../helpers/netns.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

const SCRIPT = `
import { execFileSync } from 'node:child_process';
const { Sysfs } = await import(${JSON.stringify(new URL('../../dist/uevent/sysfs.js', import.meta.url).href)});
const sysfs = new Sysfs('/sys');
const ip = (...args) => execFileSync('ip', args);
const dev = '/devices/virtual/net/hpd0';
const seen = [];
ip('link', 'add', 'hpd0', 'type', 'veth', 'peer', 'name', 'hpd1');
seen.push(sysfs.attribute(dev, 'mtu'));
ip('link', 'set', 'hpd0', 'mtu', '1400');
seen.push(sysfs.attribute(dev, 'mtu'));
ip('link', 'del', 'hpd0');
seen.push(sysfs.attribute(dev, 'mtu') ?? null);
ip('link', 'add', 'hpd0', 'type', 'veth', 'peer', 'name', 'hpd1');
ip('link', 'set', 'hpd0', 'mtu', '1300');
seen.push(sysfs.attribute(dev, 'mtu'));
seen.push(sysfs.attribute(dev, 'subsystem'), sysfs.attribute(dev, 'device') ?? null, sysfs.attribute(dev, 'statistics') ?? null);
process.stdout.write(JSON.stringify(seen));
`;

describe.skipIf(!canUseNamespaces())('sysfs attributes kept open', () => {
  it('read the value now, nothing once the device went, and the new device of that path after', () => {
    const netns = new Netns('sysattr');
    cleanups.push(() => netns.delete());
    const seen = JSON.parse(netns.run(process.execPath, '--input-type=module', '-e', SCRIPT)) as (string | null)[];
    expect(seen).toEqual(['1500', '1400', null, '1300', 'net', null, null]);
  });
});
