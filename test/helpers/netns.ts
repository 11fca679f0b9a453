// Real kernel events in isolation: a fresh network namespace per test file, a real
// daemon process in it, and cleanup of every namespace, process and temp dir.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openHistoryDb, type HistoryDb } from '../../src/history/db.js';
import { listEvents, listIncidents, type EventRecord, type IncidentRecord } from '../../src/history/records.js';

export const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

/**
 * True when tests that need root and namespaces can run. In CI (CI=true) they must:
 * there, a missing privilege is a failure, not a skip.
 */
export function canUseNamespaces(): boolean {
  const root = process.getuid?.() === 0;
  if (!root && process.env.CI === 'true') throw new Error('CI=true: these tests need root (network namespaces, real uevents)');
  return root;
}

export class Netns {
  readonly name: string;

  constructor(prefix: string) {
    this.name = `hpd-${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    execFileSync('ip', ['netns', 'add', this.name]);
  }

  /** Runs a command inside the namespace and returns its stdout. */
  run(command: string, ...args: string[]): string {
    return execFileSync('ip', ['netns', 'exec', this.name, command, ...args], { encoding: 'utf8' });
  }

  ip(...args: string[]): string {
    return this.run('ip', ...args);
  }

  /** Writes `action` to a uevent file `count` times from one process inside the namespace. */
  writeUevents(sysfsPath: string, action: string, count: number): void {
    this.run(process.execPath, '-e', `const fs=require('fs');for(let i=0;i<${count};i++)fs.writeFileSync(${JSON.stringify(sysfsPath)},${JSON.stringify(action)})`);
  }

  /**
   * Writes `action` to a uevent file in the background (bursts of 100 every 10 ms, at most
   * 10,000/s, so a slow machine still catches up) until `stop()`, which resolves with the
   * number of writes: a test can run other steps during a storm of known size.
   */
  startUevents(sysfsPath: string, action: string): { stop(): Promise<number>; child: ChildProcess } {
    const script = `const fs=require('fs');let n=0,go=true;process.on('SIGUSR1',()=>{go=false});` +
      `(function burst(){for(let i=0;i<100&&go;i++){fs.writeFileSync(${JSON.stringify(sysfsPath)},${JSON.stringify(action)});n++}` +
      `if(go)setTimeout(burst,10);else process.stdout.write(String(n))})()`;
    const child = spawn('ip', ['netns', 'exec', this.name, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    return {
      child,
      async stop() {
        child.kill('SIGUSR1');
        await exited;
        return Number(out);
      },
    };
  }

  delete(): void {
    try {
      execFileSync('ip', ['netns', 'delete', this.name], { stdio: 'ignore' });
    } catch {
      // already gone
    }
  }
}

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** A `hotplugd daemon` process, its JSON log collected line by line. */
export class DaemonProcess {
  readonly dbPath: string;
  /** A control socket beside the database, so parallel daemons do not collide. */
  readonly controlPath: string;
  /** A dev root beside the database. */
  readonly devRoot: string;
  readonly logs: LogLine[] = [];
  readonly child: ChildProcess;
  #exited: Promise<number | null>;

  /** `launcher` runs before node and must exec it (`prlimit --nofile=N:N`), so the PID stays the daemon's. */
  constructor(netns: Netns | undefined, dbPath: string, args: string[] = [], env: NodeJS.ProcessEnv = process.env, launcher: string[] = []) {
    this.dbPath = dbPath;
    this.controlPath = join(dirname(dbPath), 'control.sock');
    this.devRoot = join(dirname(dbPath), 'dev');
    // Tests never touch the machine's /dev, and run no rules unless they bring their own
    // (the shipped ones would load modules for every device a coldplug of /sys finds).
    const defaults = [
      '--dev', this.devRoot,
      ...(args.includes('--rules-dir') ? [] : ['--rules-dir', join(dirname(dbPath), 'no-rules.d')]),
      // The rule cache stays in the test's directory, not the machine's /var/cache.
      ...(args.includes('--rules-cache') ? [] : ['--rules-cache', join(dirname(dbPath), 'rules-cache')]),
    ];
    const argv = [CLI, 'daemon', '--db', dbPath, '--control', this.controlPath, '--log-format', 'json', '--log-level', 'debug', ...defaults, ...args];
    const command = [...launcher, process.execPath, ...argv];
    this.child = netns
      ? spawn('ip', ['netns', 'exec', netns.name, ...command], { stdio: ['ignore', 'ignore', 'pipe'], env })
      : spawn(command[0] as string, command.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], env });
    let partial = '';
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        try {
          this.logs.push(JSON.parse(line) as LogLine);
        } catch {
          this.logs.push({ level: 60, msg: line });
        }
      }
    });
    this.#exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  log(msg: string): LogLine | undefined {
    return this.logs.find((l) => l.msg === msg);
  }

  async waitForLog(msg: string, timeoutMs = 20_000): Promise<LogLine> {
    await waitFor(() => this.log(msg) !== undefined || this.child.exitCode !== null, timeoutMs, `log "${msg}"`);
    const line = this.log(msg);
    if (!line) throw new Error(`daemon exited before logging "${msg}":\n${this.logs.map((l) => l.msg).join('\n')}`);
    return line;
  }

  /** Runs `hotplugd ARGS --control <this daemon's socket>` (in the namespace when given) to its end. */
  async cli(netns: Netns | undefined, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string; endedAt: number }> {
    const argv = [CLI, ...args, '--control', this.controlPath];
    const child = netns ? spawn('ip', ['netns', 'exec', netns.name, process.execPath, ...argv]) : spawn(process.execPath, argv);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    return { code, stdout, stderr, endedAt: Date.now() };
  }

  signal(name: NodeJS.Signals): void {
    this.child.kill(name);
  }

  /** SIGTERM and wait: returns the exit code; SIGKILL after the timeout. */
  async stop(timeoutMs = 20_000): Promise<number | null> {
    if (this.child.exitCode !== null) return this.child.exitCode;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const code = await this.#exited;
    clearTimeout(timer);
    return code;
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

export async function waitFor(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function readDb<T>(dbPath: string, read: (db: HistoryDb) => T): T {
  const db = openHistoryDb(dbPath, { readonly: true });
  try {
    return read(db);
  } finally {
    db.close();
  }
}

export const readHistory = (dbPath: string): EventRecord[] => readDb(dbPath, (db) => listEvents(db));
export const readIncidents = (dbPath: string): IncidentRecord[] => readDb(dbPath, (db) => listIncidents(db));

/** A count from the live database without loading every row. */
export function countEvents(dbPath: string, where: string, ...params: unknown[]): number {
  try {
    return readDb(dbPath, (db) => (db.prepare(`SELECT count(*) AS n FROM events WHERE ${where}`).get(...params) as { n: number }).n);
  } catch {
    return 0; // not created yet
  }
}

export function makeTempDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), `hotplugd-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/**
 * A namespace, a temp dir and a started daemon (no coldplug, no rule watch unless `watch`)
 * with `rules` as its only rule file (rules.d/10-test.yaml); each is registered in
 * `cleanups` to be removed after the test.
 */
export async function startRuleDaemon(prefix: string, cleanups: (() => void)[], rules?: string, args: string[] = [], env?: NodeJS.ProcessEnv, launcher: string[] = [], watch = false) {
  const netns = new Netns(prefix);
  cleanups.push(() => netns.delete());
  const dir = makeTempDir(prefix);
  cleanups.push(() => dir.remove());
  const rulesDir = join(dir.path, 'rules.d');
  mkdirSync(rulesDir);
  if (rules !== undefined) writeFileSync(join(rulesDir, '10-test.yaml'), rules);
  const daemon = new DaemonProcess(netns, join(dir.path, 'history.db'), ['--no-coldplug', ...(watch ? [] : ['--no-watch']), '--rules-dir', rulesDir, ...args], env, launcher);
  cleanups.push(() => daemon.kill());
  await daemon.waitForLog('hotplugd started');
  return { netns, daemon, dir: dir.path };
}
