// What every benchmark needs from the machine: network namespaces that are always
// deleted, child processes that are always killed, and a process tree's CPU and memory.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const REPO = new URL('../..', import.meta.url).pathname;
export const CLI = join(REPO, 'dist', 'cli', 'main.js');
/** How systemd/hotplugd.service and `npm start` run node: its flags and environment. */
export const UNIT_NODE_ARGS = ['--max-semi-space-size=2'];
export const UNIT_ENV = { MALLOC_ARENA_MAX: '2' };
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }));

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
/** CLOCK_MONOTONIC in nanoseconds: the same clock in every process on the machine. */
export const monotonicNs = () => process.hrtime.bigint();

export function requireRoot() {
  if (process.getuid() !== 0) {
    console.error('bench: needs root (network namespaces, the kernel uevent socket, systemd-udevd)');
    process.exit(1);
  }
}

/**
 * Runs `body(scope)` with a fresh network namespace and temp dir; whatever the body
 * spawned through `scope.spawn`, the namespace and the dir are removed afterwards.
 */
export async function withScope(label, body) {
  const netns = `hpd-bench-${label}-${process.pid}`;
  const dir = mkdtempSync(join(tmpdir(), `hotplugd-bench-${label}-`));
  const children = [];
  execFileSync('ip', ['netns', 'add', netns]);
  const scope = {
    netns,
    dir,
    /**
     * A process inside the namespace (`ip netns exec` execs in place: same pid). `launcher`
     * runs first, outside (it must exec its arguments): `ip netns exec` mounts a sysfs of the
     * namespace on /sys, where the cgroup files are not.
     */
    spawn(command, args, { launcher = [], ...options } = {}) {
      const argv = [...launcher, 'ip', 'netns', 'exec', netns, command, ...args];
      const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], ...options });
      children.push(child);
      return child;
    },
    /** Runs to completion inside the namespace; returns stdout. */
    run(command, args, options = {}) {
      return execFileSync('ip', ['netns', 'exec', netns, command, ...args], { encoding: 'utf8', ...options });
    },
  };
  try {
    return await body(scope);
  } finally {
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    await sleep(50);
    for (const pid of namespacePids(netns)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    execFileSync('ip', ['netns', 'delete', netns]);
    rmSync(dir, { recursive: true, force: true });
  }
}

function namespacePids(netns) {
  try {
    return execFileSync('ip', ['netns', 'pids', netns], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Collects a child's stdout lines; `waitFor(predicate)` resolves with the first line that matches. */
export function lines(child, stream = child.stdout) {
  const seen = [];
  const waiters = [];
  let rest = '';
  stream.setEncoding('utf8').on('data', (chunk) => {
    const parts = (rest + chunk).split('\n');
    rest = parts.pop();
    for (const line of parts) {
      seen.push(line);
      for (const w of [...waiters]) if (w.test(line)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  return {
    seen,
    waitFor(test, timeoutMs, what) {
      const found = seen.find(test);
      if (found !== undefined) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; output:\n${seen.slice(-20).join('\n')}`)), timeoutMs);
        waiters.push({ test, resolve: (line) => (clearTimeout(timer), resolve(line)) });
        child.once('close', (code) => reject(new Error(`${what}: the process exited (${code}) first; output:\n${seen.slice(-20).join('\n')}`)));
      });
    },
  };
}

export function exited(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', resolve));
}

function stat(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    // utime, stime, cutime, cstime (fields 14-17 of proc(5)), ppid
    return { ppid: Number(fields[1]), own: (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS, reaped: (Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS };
  } catch {
    return undefined;
  }
}

/** The process and all its descendants alive now. */
export function processTree(pid) {
  const parents = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const s = stat(entry);
    if (s) parents.set(Number(entry), s.ppid);
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) for (const [child, parent] of parents) if (parent === tree[i]) tree.push(child);
  return tree;
}

/** CPU seconds (user + system) of the process itself, without its children. */
export const ownCpuSeconds = (pid) => stat(pid)?.own ?? 0;

/** CPU seconds (user + system) of a process, its live descendants and its reaped children. */
export function treeCpuSeconds(pid) {
  let total = stat(pid)?.reaped ?? 0;
  for (const p of processTree(pid)) total += stat(p)?.own ?? 0;
  return total;
}

function statusKiB(pid, field) {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${field}:`));
    return line ? Number(line.split(/\s+/)[1]) : 0;
  } catch {
    return 0;
  }
}

export const rssMiB = (pid) => statusKiB(pid, 'VmRSS') / 1024;
export const peakRssMiB = (pid) => statusKiB(pid, 'VmHWM') / 1024;
/** The process's own memory: RSS without the file pages (Node's binary, shared libraries) it shares. */
export const anonMiB = (pid) => statusKiB(pid, 'RssAnon') / 1024;
/** Peak RSS summed over a process and its live descendants (udevd's workers). */
export const treePeakRssMiB = (pid) => processTree(pid).reduce((sum, p) => sum + peakRssMiB(p), 0);

export const round = (value, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;
/** The median; of an even count, the mean of the two middle values (it was the upper one). */
export const median = (xs) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  if (sorted.length % 2 === 1 || sorted.length === 0) return sorted[mid];
  return (sorted[mid - 1] + sorted[mid]) / 2;
};
export function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}
