// What every program hotplugd starts shares: a PATH for the scripts it runs, a way to
// end a whole process group, and finding system tools where distributions put them.
import { existsSync } from 'node:fs';

/** Rules name programs by absolute path; this PATH is for the scripts they start. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Signals a program's process group (it runs detached): it and everything it started. */
export function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/** The first of `candidates` that exists, or null. */
export function findProgram(candidates: readonly string[]): string | null {
  return candidates.find((path) => existsSync(path)) ?? null;
}
