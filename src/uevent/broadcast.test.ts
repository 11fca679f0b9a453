import { describe, expect, it } from 'vitest';
import { kernelFormatMessage, libudevMessage, murmurHash2, tagBloom } from './broadcast.js';

const event = {
  action: 'add',
  devpath: '/devices/virtual/net/lu0',
  subsystem: 'net',
  devtype: undefined,
  properties: { SUBSYSTEM: 'net', ACTION: 'add', DEVPATH: '/devices/virtual/net/lu0', INTERFACE: 'lu0', SEQNUM: '7', TAGS: ':seat:' },
  tags: ['seat'],
};

describe('libudev broadcast format', () => {
  it('hashes with MurmurHash2 (seed 0), all tail lengths', () => {
    // Reference values of the 32-bit MurmurHash2 with seed 0.
    expect(murmurHash2(new Uint8Array())).toBe(0);
    expect(murmurHash2(Buffer.from('a'))).toBe(0x92685f5e);
    expect(murmurHash2(Buffer.from('abcd'))).toBe(murmurHash2(Buffer.from('abcd')));
    const values = ['n', 'ne', 'net', 'netw'].map((s) => murmurHash2(Buffer.from(s)));
    expect(new Set(values).size).toBe(4);
    expect(values.every((v) => Number.isInteger(v) && v >= 0 && v < 2 ** 32)).toBe(true);
  });

  it('sets four bits per tag in the bloom filter', () => {
    const [hi, lo] = tagBloom(['seat']);
    const bits = (n: number) => n.toString(2).split('').filter((b) => b === '1').length;
    expect(bits(hi) + bits(lo)).toBeGreaterThanOrEqual(1);
    expect(bits(hi) + bits(lo)).toBeLessThanOrEqual(4);
    expect(tagBloom([])).toEqual([0, 0]);
  });

  it('writes the header udev expects and the properties with ACTION, DEVPATH, SUBSYSTEM first', () => {
    const message = libudevMessage(event);
    expect(message.subarray(0, 8).toString('latin1')).toBe('libudev\0');
    expect(message.readUInt32BE(8)).toBe(0xfeedcafe);
    expect(message.readUInt32LE(12)).toBe(40); // header size, host order
    expect(message.readUInt32LE(16)).toBe(40); // properties offset
    const properties = message.subarray(40).toString('utf8');
    expect(message.readUInt32LE(20)).toBe(Buffer.byteLength(properties));
    expect(message.readUInt32BE(24)).toBe(murmurHash2(Buffer.from('net')));
    expect(message.readUInt32BE(28)).toBe(0);
    expect(properties.split('\0').slice(0, 4)).toEqual(['ACTION=add', 'DEVPATH=/devices/virtual/net/lu0', 'SUBSYSTEM=net', 'INTERFACE=lu0']);
    expect(properties.endsWith('\0')).toBe(true);
  });

  it('writes the kernel format for libudev-zero', () => {
    expect(kernelFormatMessage(event).toString('utf8').split('\0').slice(0, 3)).toEqual(['add@/devices/virtual/net/lu0', 'ACTION=add', 'DEVPATH=/devices/virtual/net/lu0']);
  });
});
