// Kernel datagram → Uevent. Pure: bytes in, an event or a rejection with a reason out.
// Nothing in here throws on bad input; the caller counts rejections by reason.
import { createProperties, eventFromProperties, isSafeDevpath, parseDecimal, type Uevent } from './event.js';

/** Why a datagram was refused; each reason has its own counter in the daemon. */
export const REJECT_REASONS = [
  'truncated',
  'oversized',
  'libudev-format',
  'missing-trailing-nul',
  'not-utf8',
  'bad-header',
  'malformed-pair',
  'duplicate-key',
  'missing-key',
  'header-mismatch',
  'bad-devpath',
  'bad-number',
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

export type ParseResult = { ok: true; event: Uevent } | { ok: false; reason: RejectReason; detail: string };

/**
 * The kernel caps a uevent's environment at UEVENT_BUFFER_SIZE (2048 bytes) and adds
 * the `action@devpath` header; anything much larger did not come from it.
 */
export const MAX_DATAGRAM_BYTES = 8192;

const LIBUDEV_PREFIX = Buffer.from('libudev\0', 'latin1');
const utf8 = new TextDecoder('utf-8', { fatal: true });

function reject(reason: RejectReason, detail: string): ParseResult {
  return { ok: false, reason, detail };
}

function decode(datagram: Uint8Array): string | null {
  // Kernel datagrams are almost always ASCII; latin1 decoding is exact for ASCII and much cheaper.
  for (let i = 0; i < datagram.length; i++) {
    if (datagram[i]! >= 0x80) {
      try {
        return utf8.decode(datagram);
      } catch {
        return null;
      }
    }
  }
  return Buffer.from(datagram.buffer, datagram.byteOffset, datagram.byteLength).toString('latin1');
}

/** Parses one kernel uevent datagram (`action@devpath\0KEY=VALUE\0...`). */
export function parseUevent(datagram: Uint8Array, receivedAt: number): ParseResult {
  if (datagram.length > MAX_DATAGRAM_BYTES) {
    return reject('oversized', `expected at most ${MAX_DATAGRAM_BYTES} bytes, got ${datagram.length}`);
  }
  if (datagram.length >= LIBUDEV_PREFIX.length && LIBUDEV_PREFIX.equals(datagram.subarray(0, LIBUDEV_PREFIX.length))) {
    return reject('libudev-format', 'a libudev (udevd re-broadcast) message arrived on the kernel group');
  }
  if (datagram.length === 0 || datagram[datagram.length - 1] !== 0) {
    return reject('missing-trailing-nul', 'expected the datagram to end with a NUL byte');
  }
  const text = decode(datagram);
  if (text === null) return reject('not-utf8', 'the datagram is not valid UTF-8');

  const fields = text.slice(0, -1).split('\0');
  const header = fields[0]!;
  const at = header.indexOf('@');
  if (at <= 0 || header[at + 1] !== '/') {
    return reject('bad-header', `expected "action@/devpath", got ${JSON.stringify(header.slice(0, 80))}`);
  }

  const properties = createProperties();
  for (let i = 1; i < fields.length; i++) {
    const field = fields[i]!;
    const eq = field.indexOf('=');
    if (eq <= 0) return reject('malformed-pair', `expected KEY=VALUE, got ${JSON.stringify(field.slice(0, 80))}`);
    const key = field.slice(0, eq);
    if (key in properties) return reject('duplicate-key', `key ${key} appears twice`);
    properties[key] = field.slice(eq + 1);
  }

  for (const key of ['ACTION', 'DEVPATH', 'SUBSYSTEM'] as const) {
    if (!properties[key]) return reject('missing-key', `expected a non-empty ${key}`);
  }
  const headerAction = header.slice(0, at);
  const headerDevpath = header.slice(at + 1);
  if (headerAction !== properties.ACTION || headerDevpath !== properties.DEVPATH) {
    return reject(
      'header-mismatch',
      `header says ${JSON.stringify(header.slice(0, 120))}, ACTION=${properties.ACTION} DEVPATH=${properties.DEVPATH}`,
    );
  }
  for (const key of ['DEVPATH', 'DEVPATH_OLD'] as const) {
    const devpath = properties[key];
    if (devpath !== undefined && !isSafeDevpath(devpath)) {
      return reject('bad-devpath', `${key} must be an absolute path without empty, "." or ".." parts`);
    }
  }
  for (const key of ['SEQNUM', 'MAJOR', 'MINOR'] as const) {
    if (parseDecimal(properties[key]) === null) {
      return reject('bad-number', `expected ${key} to be a decimal number, got ${JSON.stringify(properties[key])}`);
    }
  }
  return { ok: true, event: eventFromProperties(properties, receivedAt, 'kernel') };
}
