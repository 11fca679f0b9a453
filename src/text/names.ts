// What the engine accepts as names it hands to the system: paths below a root, network
// interface names, systemd unit names. Values are built from device text, so each is checked.

import { isAbsolute, relative, resolve } from 'node:path';

const MAX_NAME_BYTES = 255;
const MAX_PATH_BYTES = 4095;
const NET_NAME = /^[^\s/:]{1,15}$/;
// systemd's unit-name characters and a known suffix; never an option.
const UNIT_NAME = /^[A-Za-z0-9:_.@\\-]+\.(service|target|mount|socket|timer|path)$/;

/** True when `path` (relative paths taken from `root`) is strictly below `root`. */
export function isStrictlyBelow(root: string, path: string): boolean {
  const rel = relative(resolve(root), resolve(root, path));
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
}

/** A relative path that stays below its base: no empty, `.` or `..` segments, within name limits. */
export function isSafeRelativePath(path: string): boolean {
  if (path === '' || path.startsWith('/') || path.includes('\0') || Buffer.byteLength(path) > MAX_PATH_BYTES) return false;
  return path.split('/').every((s) => s !== '' && s !== '.' && s !== '..' && Buffer.byteLength(s) <= MAX_NAME_BYTES);
}

/** A name the kernel accepts for a network interface. */
export function isNetName(name: string): boolean {
  return NET_NAME.test(name) && name !== '.' && name !== '..';
}

export function isUnitName(unit: string): boolean {
  return UNIT_NAME.test(unit) && !unit.startsWith('-');
}

/** A KEY=VALUE value without its surrounding quotes. */
export function unquote(value: string): string {
  const quoted = /^([\'"])(.*)\1$/.exec(value);
  return quoted ? (quoted[2] as string) : value;
}
