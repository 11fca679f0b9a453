// Programs from rules: an argv array (never a shell), the event's properties as the
// environment, stdin closed, cwd /, a timeout (SIGTERM to the whole process group, SIGKILL
// after a grace period), output kept up to a bound, and a global limit on how many run.
import type { ActionResult } from './results.js';
import { DEFAULT_PATH, killGroup } from './system.js';

export const DEFAULT_PROGRAM_TIMEOUT_MS = 30_000;
export const DEFAULT_KILL_GRACE_MS = 2_000;
export const DEFAULT_MAX_OUTPUT_BYTES = 8 * 1024;
export const DEFAULT_MAX_PROGRAMS = 16;

export interface ProgramOptions {
  env: Record<string, string>;
  timeoutMs?: number;
  graceMs?: number;
  maxOutputBytes?: number;
  rule?: string | null;
}

/** Keeps the first `max` bytes of a stream and drains the rest, so a chatty program never blocks. */
function collect(stream: NodeJS.ReadableStream | null, max: number): () => { text: string; truncated: boolean } {
  const chunks: Buffer[] = [];
  let kept = 0;
  let truncated = false;
  stream?.on('data', (chunk: Buffer) => {
    if (kept >= max) {
      truncated = true;
      return;
    }
    const part = chunk.subarray(0, max - kept);
    if (part.length < chunk.length) truncated = true;
    chunks.push(part);
    kept += part.length;
  });
  return () => ({ text: Buffer.concat(chunks).toString('utf8'), truncated });
}

// Process groups of programs still running: killed when the daemon stops, since a detached
// group would otherwise outlive it.
const runningGroups = new Set<number>();

// execa is loaded on first use (or by preloadPrograms after start-up): it is a quarter
// of a second of module loading that READY need not wait for.
let execaModule: Promise<typeof import('execa')> | undefined;
const loadExeca = () => (execaModule ??= import('execa'));

/** Loads what running programs needs, so the first program after start-up does not wait. */
export function preloadPrograms(): void {
  loadExeca().catch(() => {});
}

/** Sends SIGKILL to every program still running (the daemon is stopping). Returns how many. */
export function killRunningPrograms(): number {
  const count = runningGroups.size;
  for (const pid of runningGroups) killGroup(pid, 'SIGKILL');
  runningGroups.clear();
  return count;
}

/** Runs one program to completion (or its timeout); never throws. */
export async function runProgram(argv: string[], options: ProgramOptions): Promise<ActionResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_PROGRAM_TIMEOUT_MS;
  const graceMs = options.graceMs ?? DEFAULT_KILL_GRACE_MS;
  const max = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  const started = performance.now();
  const [file, ...args] = argv;
  const base = { kind: 'program' as const, target: file ?? '', rule: options.rule ?? null, argv };
  const { execa } = await loadExeca();
  const subprocess = execa(file ?? '', args, {
    env: { PATH: DEFAULT_PATH, ...options.env },
    extendEnv: false,
    stdin: 'ignore',
    cwd: '/',
    shell: false,
    buffer: false,
    reject: false,
    detached: true, // its own process group, so a timeout reaches its children too
    cleanup: true,
    encoding: 'buffer',
  });
  if (subprocess.pid !== undefined) runningGroups.add(subprocess.pid);
  const stdout = collect(subprocess.stdout, max);
  const stderr = collect(subprocess.stderr, max);
  let timedOut = false;
  let killTimer: NodeJS.Timeout | undefined;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(subprocess.pid, 'SIGTERM');
    killTimer = setTimeout(() => killGroup(subprocess.pid, 'SIGKILL'), graceMs);
  }, timeoutMs);
  const result = await subprocess;
  clearTimeout(timer);
  clearTimeout(killTimer);
  // Whatever the program left behind in its group goes with it.
  killGroup(subprocess.pid, 'SIGKILL');
  if (subprocess.pid !== undefined) runningGroups.delete(subprocess.pid);
  const out = stdout();
  const err = stderr();
  const exitCode = result.exitCode ?? null;
  const signal = result.signal ?? null;
  const spawnError = (result as { code?: string }).code;
  const ok = !timedOut && exitCode === 0;
  const error = timedOut
    ? `timed out after ${timeoutMs} ms`
    : spawnError
      ? `${spawnError}: cannot run ${file}`
      : signal
        ? `killed by ${signal}`
        : exitCode !== 0
          ? `exit code ${exitCode}`
          : null;
  return {
    ...base,
    ok,
    error,
    durationMs: performance.now() - started,
    exitCode,
    signal,
    timedOut,
    stdout: out.truncated ? `${out.text}\n[truncated]` : out.text,
    stderr: err.truncated ? `${err.text}\n[truncated]` : err.text,
  };
}

/** At most `limit` programs at once; the rest wait in order. Intake never waits for it. */
export class ProgramPool {
  readonly limit: number;
  running = 0;
  #waiting: (() => void)[] = [];

  constructor(limit = DEFAULT_MAX_PROGRAMS) {
    this.limit = limit;
  }

  get waiting(): number {
    return this.#waiting.length;
  }

  async run(argv: string[], options: ProgramOptions): Promise<ActionResult> {
    if (this.running >= this.limit) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    this.running++;
    try {
      return await runProgram(argv, options);
    } finally {
      this.running--;
      this.#waiting.shift()?.();
    }
  }
}

/**
 * What an import program's run gives the rules: its output when it succeeded, empty output
 * when it ended with a status that means "nothing found" (then recorded as a success too),
 * else nothing (the import failed).
 */
export function importOutcome(ran: ActionResult, emptyExitCodes: readonly number[] | undefined, exitIsMatch = false): { ran: ActionResult; output: { stdout: string } | undefined } {
  if (ran.ok) return { ran, output: { stdout: ran.stdout ?? '' } };
  const exited = typeof ran.exitCode === 'number' && !ran.timedOut;
  if (exited && emptyExitCodes?.includes(ran.exitCode as number)) return { ran: { ...ran, ok: true, error: null }, output: { stdout: '' } };
  // As udevd (accept_failure): the key does not match; the run is recorded with its exit code, not as a failure.
  if (exited && exitIsMatch) return { ran: { ...ran, ok: true, error: null }, output: undefined };
  return { ran, output: undefined };
}
