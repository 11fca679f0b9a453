// Files that stand in for code or configuration (the rule cache, the code cache) are only
// trusted in a directory, and as a file, of this user that nobody else can write; they are
// written whole (a temporary file renamed) and named by the identity of what they stand for.
import { lstatSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** True when `path` is a directory (or a regular file) owned by this user and not writable by group or others. */
export function isPrivate(path: string, directory: boolean): boolean {
  const s = lstatSync(path, { throwIfNoEntry: false });
  if (s === undefined || (directory ? !s.isDirectory() : !s.isFile())) return false;
  return s.uid === (process.geteuid?.() ?? s.uid) && (s.mode & 0o022) === 0;
}

/** A file's identity: it changes with any write, replacement or move; undefined when it is gone. */
export function fileIdentity(path: string): string | undefined {
  const s = statSync(path, { bigint: true, throwIfNoEntry: false });
  return s === undefined ? undefined : `${s.size}:${s.mtimeNs}:${s.ctimeNs}:${s.ino}:${s.dev}`;
}

/** `dir/name` when both are private (isPrivate) and readable; undefined otherwise. */
export function readPrivateFile(dir: string, name: string): Buffer | undefined {
  const file = join(dir, name);
  if (!isPrivate(dir, true) || !isPrivate(file, false)) return undefined;
  try {
    return readFileSync(file);
  } catch {
    return undefined;
  }
}

/**
 * Writes `dir/name` whole (mode 0600, in a directory made 0700 if missing), or returns why
 * not: a directory others could write to is refused. The temporary file is named
 * `name.PID.tmp`.
 */
export function writePrivateFile(dir: string, name: string, data: string | Buffer): string | undefined {
  const file = join(dir, name);
  const temporary = `${file}.${process.pid}.tmp`;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (!isPrivate(dir, true)) return `${dir} is not a directory of this user that only it can write`;
    writeFileSync(temporary, data, { mode: 0o600 });
    renameSync(temporary, file);
    return undefined;
  } catch (error) {
    rmSync(temporary, { force: true });
    return `${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`;
  }
}
