// Files that stand in for code or configuration (the rule cache, the code cache) are only
// trusted in a directory, and as a file, of this user that nobody else can write.
import { lstatSync } from 'node:fs';

/** True when `path` is a directory (or a regular file) owned by this user and not writable by group or others. */
export function isPrivate(path: string, directory: boolean): boolean {
  const s = lstatSync(path, { throwIfNoEntry: false });
  if (s === undefined || (directory ? !s.isDirectory() : !s.isFile())) return false;
  return s.uid === (process.geteuid?.() ?? s.uid) && (s.mode & 0o022) === 0;
}
