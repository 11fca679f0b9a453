// The two daemons under test, each started inside a benchmark's network namespace:
// hotplugd (this repository's dist/) and systemd-udevd (Debian's `udev` package) with a
// private /run/udev, /dev and /etc/udev/rules.d, so it touches nothing of the machine.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { sendControlRequest } from '../../dist/control/protocol.js';
import { CLI, REPO, exited, lines, sleep } from './system.js';

export const UDEVD = ['/lib/systemd/systemd-udevd', '/usr/lib/systemd/systemd-udevd'].find((p) => existsSync(p));

/** A copy of /dev (nodes included) that a daemon may change freely. */
export function copyOfDev(scope) {
  const dir = join(scope.dir, 'dev');
  mkdirSync(dir);
  execFileSync('cp', ['-a', '--one-file-system', '/dev/.', dir]);
  return dir;
}

/**
 * The directory that stands in for /etc/udev/rules.d: `extraRules` as 99-bench.rules, and each
 * `masked` file name as udev masks one (a link to /dev/null hides the file of that name).
 */
export function udevRulesDir(scope, { extraRules, masked = [] } = {}) {
  const rulesDir = join(scope.dir, 'udev-rules.d');
  mkdirSync(rulesDir, { recursive: true });
  if (extraRules) writeFileSync(join(rulesDir, '99-bench.rules'), extraRules);
  for (const name of masked) symlinkSync('/dev/null', join(rulesDir, name));
  return rulesDir;
}

/**
 * A launcher (for scope.spawn) that runs a command in a private mount namespace with udev's
 * runtime directory on a tmpfs and `rulesDir` over /etc/udev/rules.d: hotplugd --udev then
 * reads the same rules as udevd does and writes its database where the host's is not.
 */
export function udevMountLauncher(rulesDir) {
  const script = `mkdir -p /run/udev && mount -t tmpfs tmpfs /run/udev && mount --bind "${rulesDir}" /etc/udev/rules.d && exec "$@"`;
  return ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', script, 'sh'];
}

/**
 * `launcher` (e.g. a board cgroup's, bench/lib/cgroup.js) runs before node and execs it; `node`
 * is the command that runs the CLI (this Node.js, or another architecture's under qemu-user).
 */
export async function startHotplugd(scope, { args = [], env = process.env, nodeArgs = [], cli = CLI, launcher = [], node = [process.execPath], startTimeoutMs = 30_000 } = {}) {
  const dbPath = join(scope.dir, 'history.db');
  const controlPath = join(scope.dir, 'control.sock');
  const spawnedAt = process.hrtime.bigint();
  const child = scope.spawn(node[0], [...node.slice(1), ...nodeArgs, cli, 'daemon', '--db', dbPath, '--control', controlPath, '--log-format', 'json', ...args], { env, launcher });
  const log = lines(child, child.stderr);
  child.stdout.resume();
  await log.waitFor((l) => l.includes('"hotplugd started"'), startTimeoutMs, 'hotplugd to start');
  const startedMs = Number(process.hrtime.bigint() - spawnedAt) / 1e6;
  return {
    kind: 'hotplugd',
    /** From spawn to its "hotplugd started" line. */
    startedMs,
    pid: child.pid,
    child,
    dbPath,
    controlPath,
    log,
    /** Rows in the history for lo's change events (the storm's). */
    recorded() {
      try {
        const db = new Database(dbPath, { readonly: true, fileMustExist: true });
        try {
          return db.prepare("SELECT count(*) AS n FROM events WHERE devpath = '/devices/virtual/net/lo' AND action = 'change'").get().n;
        } finally {
          db.close();
        }
      } catch {
        return 0;
      }
    },
    async settle(timeoutMs = 120_000) {
      const reply = await sendControlRequest(controlPath, { command: 'settle', timeoutMs }, timeoutMs + 5000);
      if (!reply.ok) throw new Error(`hotplugd settle: ${reply.error}`);
    },
    /** Stops it (SIGTERM) and returns its final counters. */
    async stop() {
      child.kill('SIGTERM');
      await exited(child);
      const stopped = log.seen.find((l) => l.includes('"hotplugd stopped"'));
      return stopped ? JSON.parse(stopped).counters : undefined;
    },
  };
}

/**
 * systemd-udevd with its default rules (plus `extraRules`, as /etc/udev/rules.d/99-bench.rules).
 * `ip netns exec`, `unshare` and `sh -c exec` all exec in place: the child's pid is udevd's.
 */
export async function startUdevd(scope, { extraRules, masked = [], launcher = [] } = {}) {
  if (!UDEVD) throw new Error('systemd-udevd is not installed (Debian package udev)');
  const dev = copyOfDev(scope);
  const rulesDir = udevRulesDir(scope, { extraRules, masked });
  mkdirSync('/run/udev', { recursive: true });
  const script = [
    'set -e',
    'mount -t tmpfs tmpfs /run/udev',
    `mount --bind "${dev}" /dev`,
    `if [ -d /etc/udev/rules.d ]; then mount --bind "${rulesDir}" /etc/udev/rules.d; fi`,
    `exec ${UDEVD}`,
  ].join('\n');
  const child = scope.spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], { launcher });
  const log = lines(child, child.stderr);
  child.stdout.resume();
  const udevadm = (...args) => execFileSync('nsenter', ['-t', String(child.pid), '-m', '-n', 'udevadm', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`systemd-udevd exited: ${log.seen.join('\n')}`);
    try {
      udevadm('control', '--ping');
      break;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`systemd-udevd did not answer: ${error.message}`);
      await sleep(20);
    }
  }
  return {
    kind: 'udevd',
    pid: child.pid,
    child,
    log,
    udevadm,
    async settle(timeoutMs = 600_000) {
      udevadm('settle', `--timeout=${Math.ceil(timeoutMs / 1000)}`);
    },
    async stop() {
      child.kill('SIGTERM');
      await exited(child);
      return undefined;
    },
  };
}

/** The group-2 listener (bench/lib/listen.js) inside the namespace, bound before it returns. */
export async function startListener(scope, uuid, expect = 0) {
  const child = scope.spawn(process.execPath, [join(REPO, 'bench', 'lib', 'listen.js'), '--uuid', uuid, '--expect', String(expect)]);
  const out = lines(child);
  child.stderr.resume();
  await out.waitFor((l) => l === 'READY', 10_000, 'the listener');
  return {
    /** Resolves with the listener's result once it has `expect` events, or after `timeoutMs` (then partial). */
    async result(timeoutMs) {
      const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
      const line = await out.waitFor((l) => l.startsWith('{'), timeoutMs + 10_000, 'the listener result');
      clearTimeout(timer);
      return JSON.parse(line);
    },
  };
}

/** Writes `count` synthetic uevents to lo inside the namespace (see write-uevents.js). */
export function writeUevents(scope, { count, uuid, rate = 0 }) {
  const out = scope.run(process.execPath, [join(REPO, 'bench', 'lib', 'write-uevents.js'), '--count', String(count), '--uuid', uuid, '--rate', String(rate)], { maxBuffer: 256 * 1024 * 1024 });
  const result = JSON.parse(out);
  return { startNs: BigInt(result.startNs), endNs: BigInt(result.endNs), sendNs: result.sendNs?.map(BigInt) };
}
