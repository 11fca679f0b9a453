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
// Exact for ASCII too, and native: cheaper than scanning for high bytes in JS.
// ignoreBOM: a leading byte-order mark stays in the text to be refused, not stripped.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function reject(reason: RejectReason, detail: string): ParseResult {
  return { ok: false, reason, detail };
}

function startsWithLibudev(datagram: Uint8Array): boolean {
  if (datagram.length < LIBUDEV_PREFIX.length) return false;
  for (let i = 0; i < LIBUDEV_PREFIX.length; i++) if (datagram[i] !== LIBUDEV_PREFIX[i]) return false;
  return true;
}

/** Parses one kernel uevent datagram (`action@devpath\0KEY=VALUE\0...`). */
export function parseUevent(datagram: Uint8Array, receivedAt: number): ParseResult {
  if (datagram.length > MAX_DATAGRAM_BYTES) {
    return reject('oversized', `expected at most ${MAX_DATAGRAM_BYTES} bytes, got ${datagram.length}`);
  }
  if (startsWithLibudev(datagram)) {
    return reject('libudev-format', 'a libudev (udevd re-broadcast) message arrived on the kernel group');
  }
  if (datagram.length === 0 || datagram[datagram.length - 1] !== 0) {
    return reject('missing-trailing-nul', 'expected the datagram to end with a NUL byte');
  }
  let text: string;
  try {
    text = utf8.decode(datagram);
  } catch {
    return reject('not-utf8', 'the datagram is not valid UTF-8');
  }

  if (text.startsWith('\uFEFF')) return reject('bad-header', 'the datagram starts with a byte-order mark, which the kernel never sends');
  const headerEnd = text.indexOf('\0');
  const at = text.indexOf('@');
  if (at <= 0 || at > headerEnd || text[at + 1] !== '/') {
    return reject('bad-header', `expected "action@/devpath", got ${JSON.stringify(text.slice(0, Math.min(headerEnd, 80)))}`);
  }

  const properties = createProperties();
  for (let start = headerEnd + 1; start < text.length; ) {
    const end = text.indexOf('\0', start);
    const eq = text.indexOf('=', start);
    if (eq <= start || eq > end) {
      return reject('malformed-pair', `expected KEY=VALUE, got ${JSON.stringify(text.slice(start, Math.min(end, start + 80)))}`);
    }
    const key = text.slice(start, eq);
    if (key in properties) return reject('duplicate-key', `key ${key} appears twice`);
    properties[key] = text.slice(eq + 1, end);
    start = end + 1;
  }

  for (const key of ['ACTION', 'DEVPATH', 'SUBSYSTEM'] as const) {
    if (!properties[key]) return reject('missing-key', `expected a non-empty ${key}`);
  }
  const action = properties.ACTION!;
  const devpath = properties.DEVPATH!;
  if (at !== action.length || !text.startsWith(action) || headerEnd - at - 1 !== devpath.length || !text.startsWith(devpath, at + 1)) {
    return reject(
      'header-mismatch',
      `header says ${JSON.stringify(text.slice(0, Math.min(headerEnd, 120)))}, ACTION=${action} DEVPATH=${devpath}`,
    );
  }
  if (!isSafeDevpath(devpath) || (properties.DEVPATH_OLD !== undefined && !isSafeDevpath(properties.DEVPATH_OLD))) {
    return reject('bad-devpath', 'DEVPATH and DEVPATH_OLD must be absolute paths without empty, "." or ".." parts');
  }
  for (const key of ['SEQNUM', 'MAJOR', 'MINOR'] as const) {
    if (parseDecimal(properties[key]) === null) {
      return reject('bad-number', `expected ${key} to be a decimal number, got ${JSON.stringify(properties[key])}`);
    }
  }
  return { ok: true, event: eventFromProperties(properties, receivedAt, 'kernel') };
}
