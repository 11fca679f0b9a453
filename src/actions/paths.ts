// Paths under the dev root that hostile names cannot turn elsewhere: every directory on
// the way must be a real directory (not a symlink someone planted), created if missing.
import { lstatSync, mkdirSync, renameSync, symlinkSync, unlinkSync } from 'node:fs';
import { dirname, resolve, sep } from 'node:path';
import { HotplugError } from '../errors.js';
import { isStrictlyBelow } from '../text/names.js';

/** `path` resolved, or an error when it is not strictly below `root`. */
export function insideRoot(root: string, path: string): string {
  if (!isStrictlyBelow(root, path)) throw new HotplugError('EOUTSIDE', `${path} is not inside ${root}`);
  return resolve(root, path);
}

/** Creates the parent directories of `path` below `root`, refusing any that is a symlink. */
export function ensureParentDirectories(root: string, path: string): void {
  const base = resolve(root);
  const missing: string[] = [];
  for (let dir = dirname(path); dir !== base && dir.startsWith(base + sep); dir = dirname(dir)) {
    const stat = lstatSync(dir, { throwIfNoEntry: false });
    if (stat === undefined) missing.push(dir);
    else if (!stat.isDirectory()) throw new HotplugError('ENOTDIR', `${dir} is not a directory (a link or a file is in the way)`);
  }
  for (const dir of missing.reverse()) mkdirSync(dir, { mode: 0o755 });
}

let temporaries = 0;

/** Points the link `path` under `root` at `target` at once: a new link renamed over the old. */
export function replaceSymlink(root: string, path: string, target: string): void {
  ensureParentDirectories(root, path);
  const temporary = `${path}.hotplugd-${process.pid}-${++temporaries}`;
  symlinkSync(target, temporary);
  try {
    renameSync(temporary, path);
  } catch (error) {
    unlinkSync(temporary);
    throw error;
  }
}
