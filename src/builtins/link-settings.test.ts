import { describe, expect, it } from 'vitest';
import { parseLinkFile } from './link-files.js';
import { machineIdBytes, parseMac, persistentMac, plannedAltnames, plannedMac, stableName, validAltname } from './link-settings.js';

const MACHINE = machineIdBytes('3d1219c7c4c5404aaa1f6d2a48adfda4\n')!;

describe('persistent MAC addresses', () => {
  it('are the ones udevd gives', () => {
    // Seen on this project's VM: `udevadm test-builtin net_setup_link` (systemd 252) on a veth
    // named "va", machine ID 3d1219c7..., said "Applying persistent MAC address: 0a:17:58:65:b0:49".
    expect(persistentMac(MACHINE, 'va')).toBe('0a:17:58:65:b0:49');
  });
  it('are unicast and locally administered', () => {
    for (const name of ['eth0', 'enp0s3', 'wlan0', 'x']) {
      const first = Number.parseInt(persistentMac(MACHINE, name).slice(0, 2), 16);
      expect(first & 0x01).toBe(0);
      expect(first & 0x02).toBe(2);
    }
  });
  it('hash the most stable name the interface has', () => {
    expect(stableName({ ID_NET_NAME_PATH: 'enp0s3', ID_NET_NAME_MAC: 'enx525400123456' }, 'eth0')).toBe('enp0s3');
    expect(stableName({ ID_NET_NAME_ONBOARD: 'eno1', ID_NET_NAME_PATH: 'enp0s3' }, 'eth0')).toBe('eno1');
    expect(stableName({}, 'veth7')).toBe('veth7');
  });
  it('need a machine ID', () => {
    expect(machineIdBytes(undefined)).toBeUndefined();
    expect(machineIdBytes('uninitialized\n')).toBeUndefined();
    expect(plannedMac({ policy: 'persistent', fixed: undefined, addrAssignType: 1, stableName: 'va', machineId: undefined })).toBeNull();
  });
});

describe('the MAC address a policy plans', () => {
  const base = { fixed: undefined, stableName: 'va', machineId: MACHINE };
  it('replaces a random address with a persistent one, and only that', () => {
    expect(plannedMac({ ...base, policy: 'persistent', addrAssignType: 1 })).toBe('0a:17:58:65:b0:49');
    expect(plannedMac({ ...base, policy: 'persistent', addrAssignType: 0 })).toBeNull(); // permanent already
  });
  it('replaces a permanent address with a random one', () => {
    const mac = plannedMac({ ...base, policy: 'random', addrAssignType: 0 });
    expect(mac).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    expect(Number.parseInt(mac!.slice(0, 2), 16) & 0x03).toBe(2);
    expect(plannedMac({ ...base, policy: 'random', addrAssignType: 1 })).toBeNull();
  });
  it('leaves an address set by a program or stolen from another interface', () => {
    expect(plannedMac({ ...base, policy: 'persistent', addrAssignType: 3 })).toBeNull();
    expect(plannedMac({ ...base, policy: 'random', addrAssignType: 2 })).toBeNull();
    expect(plannedMac({ ...base, policy: 'persistent', addrAssignType: Number.NaN })).toBeNull();
  });
  it('sets MACAddress= when no policy makes one', () => {
    expect(plannedMac({ ...base, policy: undefined, fixed: '02:00:00:00:00:01', addrAssignType: 0 })).toBe('02:00:00:00:00:01');
    expect(plannedMac({ ...base, policy: 'none', fixed: undefined, addrAssignType: 1 })).toBeNull();
  });
});

describe('alternative names', () => {
  it('come from AlternativeName= and the policy, without the current and new names, sorted', () => {
    const properties = { ID_NET_NAME_PATH: 'enp0s3', ID_NET_NAME_SLOT: 'ens3', ID_NET_NAME_MAC: 'enx525400123456' };
    expect(plannedAltnames(['uplink'], ['database', 'onboard', 'slot', 'path'], properties, 'eth0', 'ens3')).toEqual(['enp0s3', 'uplink']);
    expect(plannedAltnames([], ['path', 'path'], properties, 'enp0s3', undefined)).toEqual([]);
  });
  it('are refused when the kernel would refuse them', () => {
    expect(validAltname('a'.repeat(127))).toBe(true);
    for (const bad of ['', 'a'.repeat(128), 'a/b', 'a:b', 'a b', '.', '..', '42']) expect(validAltname(bad)).toBe(false);
    expect(plannedAltnames([], ['path'], { ID_NET_NAME_PATH: 'x/../../y' }, 'eth0', undefined)).toEqual([]);
  });
});

describe('[Link] settings in .link files', () => {
  it('are read', () => {
    const { config, problems } = parseLinkFile('/x/10-a.link', '[Match]\nOriginalName=eth*\n[Link]\nMACAddressPolicy=none\nMACAddress=52:54:00:AA:bb:01\nAlternativeName=up-1 up-2\nAlternativeName=up-3\n');
    expect(problems).toEqual([]);
    expect(config).toMatchObject({ macAddressPolicy: 'none', mac: '52:54:00:aa:bb:01', alternativeNames: ['up-1', 'up-2', 'up-3'] });
  });
  it('with bad values are reported and ignored', () => {
    const { config, problems } = parseLinkFile('/x/10-b.link', '[Link]\nMACAddressPolicy=sometimes\nMACAddress=nope\nAlternativeName=a/b ok\nAlternativeName=\n');
    expect(problems).toEqual([
      '/x/10-b.link:2: unknown MACAddressPolicy sometimes; ignored',
      '/x/10-b.link:3: MACAddress=nope is not a MAC address; ignored',
      '/x/10-b.link:4: "a/b" is not a valid alternative name; ignored',
    ]);
    expect(config).toMatchObject({ macAddressPolicy: undefined, mac: undefined, alternativeNames: [] });
  });
  it('parse MAC addresses as systemd writes them', () => {
    expect(parseMac('52-54-00-12-34-56')).toBe('52:54:00:12:34:56');
    expect(parseMac('52:54:00:12:34')).toBeUndefined();
  });
});
