// V8's code cache for the bundled command line: the bytecode of the functions a run compiled,
// so the next start deserializes them instead of parsing and compiling the 1.3 MB bundle
// (bench/startup.js: exec → READY 287 → 221 ms). V8 checks only the source's length and its
// own version and flags, so each cache file is named by everything that must match: the
// bundle file's identity, node's version and architecture, node's flags, and whether the
// command is the daemon (which runs under its own heap flag, launch.ts). The cache is code:
// it is read and written only in a directory, and as a file, of this user that nobody else
// can write (private-files.ts).
import { createHash } from 'node:crypto';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileIdentity, readPrivateFile, writePrivateFile } from '../private-files.js';

// Enough for the command line's and the daemon's flags, and one node upgrade of each.
const KEPT_FILES = 4;

export interface CodeCache {
  /** The cached code for this bundle, node, flags and kind of command, if there is one. */
  readonly data: Buffer | undefined;
  /** Writes what `create` returns; returns why it could not, if so. */
  save(create: () => Buffer): string | undefined;
}

/** The cache of `bundle`'s code in `dir` (none when `dir` is undefined). */
export function openCodeCache(bundle: string, dir: string | undefined, kind: string): CodeCache {
  if (dir === undefined) return { data: undefined, save: () => 'no code cache directory' };
  const key = createHash('sha256')
    .update(JSON.stringify([process.version, process.arch, process.execArgv, process.env.NODE_OPTIONS ?? '', kind, fileIdentity(bundle)]))
    .digest('hex')
    .slice(0, 32);
  const name = `code-${key}.bin`;
  return {
    data: readPrivateFile(dir, name),
    save(create) {
      try {
        const failure = writePrivateFile(dir, name, create());
        if (failure === undefined) prune(dir);
        return failure;
      } catch (error) {
        // Another process pruning at the same time: a file gone between listing and stat.
        return (error as Error).message;
      }
    },
  };
}

/** Removes all but the newest cache files (a node upgrade or a new build leaves old ones), and what a killed writer left. */
function prune(dir: string): void {
  const files = readdirSync(dir)
    .filter((name) => /^code-[0-9a-f]{32}\.bin(\.\d+\.tmp)?$/.test(name))
    .map((name) => ({ path: join(dir, name), mtime: statSync(join(dir, name)).mtimeMs }))
    .sort((a, b) => b.mtime - a.mtime);
  const kept = files.filter((f) => f.path.endsWith('.bin')).slice(0, KEPT_FILES);
  const writing = Date.now() - 60_000;
  for (const f of files) if (!kept.includes(f) && !(f.path.endsWith('.tmp') && f.mtime > writing)) rmSync(f.path, { force: true });
}
