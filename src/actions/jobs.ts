// Supervised jobs: a long-running program that lives as long as its device. Started on
// the device's first event that asks for it, restarted with backoff when it ends (as its
// restart policy says), stopped on the device's remove. Jobs never block the event queue.
import { spawn, type ChildProcess } from 'node:child_process';
import type { PlannedJob } from '../rules/plan.js';
import type { ActionResult } from './results.js';
import { DEFAULT_PATH, killGroup } from './system.js';

const FIRST_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 60_000;
// A job that ran this long before ending starts its backoff over.
const STABLE_AFTER_MS = 10_000;
const STOP_GRACE_MS = 5000;

export type JobRecorder = (result: ActionResult) => void;

export interface JobState {
  devpath: string;
  argv: string[];
  rule: string;
  pid: number | undefined;
  restarts: number;
  state: 'running' | 'waiting' | 'stopping' | 'stopped';
  /** Started by a link-up: runs while the interface has a carrier (stopped by its link-down). */
  whileLinkUp: boolean;
}

class Job {
  readonly state: JobState;
  #spec: PlannedJob;
  #env: Record<string, string>;
  #record: JobRecorder;
  #child: ChildProcess | undefined;
  #startedAt = 0;
  #backoffMs = FIRST_BACKOFF_MS;
  #timer: NodeJS.Timeout | undefined;
  #exited: Promise<void> = Promise.resolve();

  constructor(devpath: string, spec: PlannedJob, env: Record<string, string>, record: JobRecorder, whileLinkUp: boolean) {
    this.#spec = spec;
    this.#env = env;
    this.#record = record;
    this.state = { devpath, argv: spec.argv, rule: spec.rule, pid: undefined, restarts: 0, state: 'stopped', whileLinkUp };
  }

  start(): void {
    const [file, ...args] = this.#spec.argv;
    this.#startedAt = performance.now();
    const child = spawn(file ?? '', args, { env: { PATH: DEFAULT_PATH, ...this.#env }, cwd: '/', stdio: 'ignore', detached: true });
    this.#child = child;
    this.state.pid = child.pid;
    this.state.state = 'running';
    this.#exited = new Promise((resolve) => {
      child.once('error', (error: NodeJS.ErrnoException) => {
        this.#ended(null, null, `${error.code ?? 'error'}: cannot run ${file}`);
        resolve();
      });
      child.once('exit', (code, signal) => {
        this.#ended(code, signal, null);
        resolve();
      });
    });
    if (child.pid !== undefined) this.#result('job-start', true, null, {});
  }

  async stop(): Promise<void> {
    clearTimeout(this.#timer);
    if (this.state.state !== 'running') {
      this.state.state = 'stopped';
      return;
    }
    this.state.state = 'stopping';
    const pid = this.#child?.pid;
    const signal = this.#spec.stopSignal as NodeJS.Signals;
    killGroup(pid, signal);
    const kill = setTimeout(() => killGroup(pid, 'SIGKILL'), STOP_GRACE_MS);
    await this.#exited;
    clearTimeout(kill);
  }

  #ended(code: number | null, signal: NodeJS.Signals | null, spawnError: string | null): void {
    const ranMs = performance.now() - this.#startedAt;
    killGroup(this.#child?.pid, 'SIGKILL'); // whatever it left behind in its group
    this.state.pid = undefined;
    if (this.state.state === 'stopping') {
      this.state.state = 'stopped';
      this.#result('job-stop', true, null, { exitCode: code, signal, durationMs: ranMs });
      return;
    }
    const failed = spawnError !== null || code !== 0;
    const error = spawnError ?? (signal ? `killed by ${signal}` : code !== 0 ? `exit code ${code}` : null);
    this.#result('job-exit', !failed, error, { exitCode: code, signal, durationMs: ranMs });
    const again = this.#spec.restart === 'always' || (this.#spec.restart === 'on-failure' && failed);
    if (!again) {
      this.state.state = 'stopped';
      return;
    }
    if (ranMs >= STABLE_AFTER_MS) this.#backoffMs = FIRST_BACKOFF_MS;
    this.state.state = 'waiting';
    this.#timer = setTimeout(() => {
      this.state.restarts++;
      this.start();
    }, this.#backoffMs);
    this.#backoffMs = Math.min(MAX_BACKOFF_MS, this.#backoffMs * 2);
  }

  #result(kind: 'job-start' | 'job-exit' | 'job-stop', ok: boolean, error: string | null, extra: Partial<ActionResult>): void {
    this.#record({ kind, target: this.#spec.argv[0] ?? '', rule: this.#spec.rule, ok, error, durationMs: 0, argv: this.#spec.argv, ...extra });
  }
}

export class JobSupervisor {
  #jobs = new Map<string, Job>();

  /** Starts the job for this device unless it already runs (or waits to restart). */
  ensure(devpath: string, spec: PlannedJob, env: Record<string, string>, record: JobRecorder, whileLinkUp = false): void {
    const key = `${devpath}\0${spec.rule}\0${JSON.stringify(spec.argv)}`;
    const existing = this.#jobs.get(key);
    if (existing && existing.state.state !== 'stopped') return;
    const job = new Job(devpath, spec, env, record, whileLinkUp);
    this.#jobs.set(key, job);
    job.start();
  }

  /** The device is gone (or, `linkOnly`, its interface lost its carrier): stop its jobs (those started by a link-up). */
  async stopDevice(devpath: string, linkOnly = false): Promise<void> {
    const stopping: Promise<void>[] = [];
    for (const [key, job] of this.#jobs) {
      if (job.state.devpath !== devpath || (linkOnly && !job.state.whileLinkUp)) continue;
      this.#jobs.delete(key);
      stopping.push(job.stop());
    }
    await Promise.all(stopping);
  }

  async stopAll(): Promise<void> {
    const jobs = [...this.#jobs.values()];
    this.#jobs.clear();
    await Promise.all(jobs.map((job) => job.stop()));
  }

  list(): JobState[] {
    return [...this.#jobs.values()].map((job) => ({ ...job.state }));
  }
}
