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

// Subsystems, devtypes and tags are few: their hashes are computed once.
const hashes = new Map<string, number>();
function stringHash(text: string): number {
  let hash = hashes.get(text);
  if (hash === undefined) {
    if (hashes.size >= 4096) hashes.clear();
    hash = murmurHash2(Buffer.from(text, 'utf8'));
    hashes.set(text, hash);
  }
  return hash;
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

/**
 * `KEY=VALUE\0` for each property, ACTION, DEVPATH and SUBSYSTEM first (as udevd sends
 * them); DEVNAME as `devname` when given (udevd sends the node's path, the kernel its name).
 */
function propertiesText(properties: Record<string, string>, devname?: string): string {
  let text = `ACTION=${properties.ACTION}\0DEVPATH=${properties.DEVPATH}\0SUBSYSTEM=${properties.SUBSYSTEM}\0`;
  for (const key in properties) {
    if (key === 'ACTION' || key === 'DEVPATH' || key === 'SUBSYSTEM') continue;
    text += `${key}=${key === 'DEVNAME' && devname !== undefined ? devname : properties[key]}\0`;
  }
  return text;
}

export interface BroadcastEvent {
  action: string;
  devpath: string;
  subsystem: string;
  devtype?: string | undefined;
  /** Properties after the rules (DEVLINKS and TAGS included when set). */
  properties: Record<string, string>;
  tags: readonly string[];
  /** The device node's path: DEVNAME in the libudev message, as udevd sends it (the kernel format keeps the name). */
  devnode?: string | undefined;
}

// Both datagrams are built in one buffer that is reused: the broadcaster sends them before
// it builds the next, and a storm then costs no allocation per event for them.
let scratch = Buffer.allocUnsafe(64 * 1024);

/**
 * The two datagrams for one event, sharing one buffer: the libudev one (header sizes in
 * host order, hashes in network order) and the kernel-format one (`ACTION@DEVPATH\0`).
 * They are views of a reused buffer, valid until the next call: send them at once.
 */
export function broadcastMessages(event: BroadcastEvent): { libudev: Buffer; kernel: Buffer } {
  const properties = propertiesText(event.properties, event.devnode);
  const kernelProperties = event.devnode === undefined || event.properties.DEVNAME === undefined ? undefined : propertiesText(event.properties);
  const header = `${event.action}@${event.devpath}\0`;
  // UTF-8 takes at most 3 bytes per UTF-16 unit; the properties are there twice.
  const worstCase = LIBUDEV_HEADER_BYTES + 3 * (properties.length + (kernelProperties ?? properties).length + header.length);
  if (worstCase > scratch.length) scratch = Buffer.allocUnsafe(worstCase);
  const buffer = scratch;
  const propertiesLength = buffer.write(properties, LIBUDEV_HEADER_BYTES, 'utf8');
  buffer.write('libudev\0', 0, 'latin1');
  buffer.writeUInt32BE(LIBUDEV_MAGIC, 8);
  const writeHost = (value: number, offset: number) => (HOST_LITTLE_ENDIAN ? buffer.writeUInt32LE(value, offset) : buffer.writeUInt32BE(value, offset));
  writeHost(LIBUDEV_HEADER_BYTES, 12);
  writeHost(LIBUDEV_HEADER_BYTES, 16);
  writeHost(propertiesLength, 20);
  buffer.writeUInt32BE(stringHash(event.subsystem), 24);
  buffer.writeUInt32BE(event.devtype ? stringHash(event.devtype) : 0, 28);
  const [hi, lo] = event.tags.length > 0 ? tagBloom(event.tags) : [0, 0];
  buffer.writeUInt32BE(hi, 32);
  buffer.writeUInt32BE(lo, 36);
  const kernelStart = LIBUDEV_HEADER_BYTES + propertiesLength;
  const headerLength = buffer.write(header, kernelStart, 'utf8');
  const kernelLength = kernelProperties === undefined
    ? buffer.copy(buffer, kernelStart + headerLength, LIBUDEV_HEADER_BYTES, kernelStart)
    : buffer.write(kernelProperties, kernelStart + headerLength, 'utf8');
  return { libudev: buffer.subarray(0, kernelStart), kernel: buffer.subarray(kernelStart, kernelStart + headerLength + kernelLength) };
}

export const libudevMessage = (event: BroadcastEvent): Buffer => Buffer.from(broadcastMessages(event).libudev);
export const kernelFormatMessage = (event: BroadcastEvent): Buffer => Buffer.from(broadcastMessages(event).kernel);
