// Passing processed events on to other listeners, as udevd and mdevd do:
// - netlink group 2 in libudev's format ("libudev\0", a magic number, and hashes of the
//   subsystem, devtype and tags that libudev clients filter on in the kernel), so
//   libudev/sd-device monitors (`udevadm monitor --udev`) see our events;
// - netlink group 4 in the kernel's own format, which libudev-zero listens to
//   (mdevd's -O 4).
// Only root may send to these groups; receivers check that the sender is uid 0.
import { endianness } from 'node:os';

/** libudev's group for processed events (udevd's MONITOR_GROUP_UDEV). */
export const LIBUDEV_GROUP = 2;
/** libudev-zero's group for re-broadcast kernel-format events. */
export const RAW_GROUP = 4;

const LIBUDEV_MAGIC = 0xfeedcafe;
const HOST_LITTLE_ENDIAN = endianness() === 'LE';
/** prefix[8] + eight 32-bit fields. */
const LIBUDEV_HEADER_BYTES = 40;

/** MurmurHash2 (32-bit, seed 0), the hash libudev uses for its filter fields. */
export function murmurHash2(bytes: Uint8Array, seed = 0): number {
  const m = 0x5bd1e995;
  let length = bytes.length;
  let h = (seed ^ length) >>> 0;
  let i = 0;
  while (length >= 4) {
    let k = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
    i += 4;
    length -= 4;
  }
  // The 1-3 trailing bytes, as the reference implementation's fall-through switch does.
  if (length === 3) h ^= bytes[i + 2]! << 16;
  if (length >= 2) h ^= bytes[i + 1]! << 8;
  if (length >= 1) {
    h ^= bytes[i]!;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h >>> 0;
}

function stringHash(text: string): number {
  return murmurHash2(Buffer.from(text, 'utf8'));
}

/** The 64-bit tag bloom filter as [hi, lo]: four bits per tag, from its hash. */
export function tagBloom(tags: readonly string[]): [number, number] {
  let hi = 0;
  let lo = 0;
  for (const tag of tags) {
    const hash = stringHash(tag);
    for (const shift of [0, 6, 12, 18]) {
      const bit = (hash >>> shift) & 63;
      if (bit >= 32) hi |= 1 << (bit - 32);
      else lo |= 1 << bit;
    }
  }
  return [hi >>> 0, lo >>> 0];
}

function propertiesBlob(properties: Record<string, string>, order: readonly string[]): Buffer {
  const seen = new Set<string>();
  const parts: string[] = [];
  for (const key of [...order, ...Object.keys(properties)]) {
    if (seen.has(key) || properties[key] === undefined) continue;
    seen.add(key);
    parts.push(`${key}=${properties[key]}\0`);
  }
  return Buffer.from(parts.join(''), 'utf8');
}

export interface BroadcastEvent {
  action: string;
  devpath: string;
  subsystem: string;
  devtype?: string | undefined;
  /** Properties after the rules (DEVLINKS and TAGS included when set). */
  properties: Record<string, string>;
  tags: readonly string[];
}

/** One libudev monitor datagram. The header's sizes are in host order, hashes in network order. */
export function libudevMessage(event: BroadcastEvent): Buffer {
  const properties = propertiesBlob(event.properties, ['ACTION', 'DEVPATH', 'SUBSYSTEM']);
  const message = Buffer.alloc(LIBUDEV_HEADER_BYTES + properties.length);
  message.write('libudev\0', 0, 'latin1');
  message.writeUInt32BE(LIBUDEV_MAGIC, 8);
  const writeHost = (value: number, offset: number) => (HOST_LITTLE_ENDIAN ? message.writeUInt32LE(value, offset) : message.writeUInt32BE(value, offset));
  writeHost(LIBUDEV_HEADER_BYTES, 12);
  writeHost(LIBUDEV_HEADER_BYTES, 16);
  writeHost(properties.length, 20);
  message.writeUInt32BE(stringHash(event.subsystem), 24);
  message.writeUInt32BE(event.devtype ? stringHash(event.devtype) : 0, 28);
  const [hi, lo] = tagBloom(event.tags);
  message.writeUInt32BE(hi, 32);
  message.writeUInt32BE(lo, 36);
  properties.copy(message, LIBUDEV_HEADER_BYTES);
  return message;
}

/** One datagram in the kernel's format: `ACTION@DEVPATH\0` then `KEY=VALUE\0` each. */
export function kernelFormatMessage(event: BroadcastEvent): Buffer {
  const header = Buffer.from(`${event.action}@${event.devpath}\0`, 'utf8');
  return Buffer.concat([header, propertiesBlob(event.properties, ['ACTION', 'DEVPATH', 'SUBSYSTEM'])]);
}
