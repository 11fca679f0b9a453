// Programs from rules: an argv array (never a shell), the event's properties as the
// environment, stdin closed, cwd /, a timeout (SIGTERM to the whole process group, SIGKILL
// after a grace period), output kept up to a bound, and a global limit on how many run.
import { spawn, type ChildProcess } from 'node:child_process';
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
// group would otherwise outlive it; and when the process exits any other way.
const runningGroups = new Set<number>();
let exitHook = false;

/** Sends SIGKILL to every program still running (the daemon is stopping). Returns how many. */
export function killRunningPrograms(): number {
  const count = runningGroups.size;
  for (const pid of runningGroups) killGroup(pid, 'SIGKILL');
  runningGroups.clear();
  return count;
}

interface Ended {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  spawnError: string | undefined;
}

/**
 * Starts the program with Node's child_process (execa, used before, took twice the daemon's
 * CPU a program, 1.6–2.4 against 0.8–1.1 ms on the development VM, and ~100 ms to load) and
 * resolves once it ended and its output closed.
 */
function start(file: string, args: string[], env: Record<string, string>): { child: ChildProcess | undefined; ended: Promise<Ended> } {
  let child: ChildProcess;
  try {
    child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'], cwd: '/', shell: false, detached: true });
  } catch (error) {
    // A NUL byte in an argument, say: refused before any process exists.
    const code = (error as NodeJS.ErrnoException).code ?? 'EINVAL';
    return { child: undefined, ended: Promise.resolve({ exitCode: null, signal: null, spawnError: code }) };
  }
  const ended = new Promise<Ended>((resolve) => {
    let spawnError: string | undefined;
    child.once('error', (error: NodeJS.ErrnoException) => {
      if (child.pid === undefined) spawnError = error.code ?? 'error';
    });
    // After 'exit' and the output's end; also after a failed start ('error', then 'close').
    child.once('close', (code, signal) => resolve(spawnError === undefined ? { exitCode: code, signal, spawnError } : { exitCode: null, signal: null, spawnError }));
  });
  return { child, ended };
}

/** Runs one program to completion (or its timeout); never throws. */
export async function runProgram(argv: string[], options: ProgramOptions): Promise<ActionResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_PROGRAM_TIMEOUT_MS;
  const graceMs = options.graceMs ?? DEFAULT_KILL_GRACE_MS;
  const max = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  const started = performance.now();
  const [file, ...args] = argv;
  const base = { kind: 'program' as const, target: file ?? '', rule: options.rule ?? null, argv };
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => killRunningPrograms());
  }
  // Its own process group (detached), so a timeout reaches its children too.
  const { child, ended } = start(file ?? '', args, { PATH: DEFAULT_PATH, ...options.env });
  const pid = child?.pid;
  if (pid !== undefined) runningGroups.add(pid);
  const stdout = collect(child?.stdout ?? null, max);
  const stderr = collect(child?.stderr ?? null, max);
  let timedOut = false;
  let killTimer: NodeJS.Timeout | undefined;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(pid, 'SIGTERM');
    killTimer = setTimeout(() => killGroup(pid, 'SIGKILL'), graceMs);
  }, timeoutMs);
  const { exitCode, signal, spawnError } = await ended;
  clearTimeout(timer);
  clearTimeout(killTimer);
  // Whatever the program left behind in its group goes with it.
  killGroup(pid, 'SIGKILL');
  if (pid !== undefined) runningGroups.delete(pid);
  const out = stdout();
  const err = stderr();
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
