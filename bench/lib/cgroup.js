// A cgroup shaped like a small board: a share of one CPU and a memory limit, on cgroup v2
// (cpu.max, memory.max) or, where the controllers are still on v1 hierarchies, v1
// (cpu.cfs_quota_us, memory.limit_in_bytes). A process is put in it by `launcher`, a shell
// that writes its own pid into the group and then execs the command (the pid stays the
// command's). Removed, with anything still inside killed, by remove().
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = '/sys/fs/cgroup';

// This process's own group in a v1 hierarchy (e.g. /process_api/<id> for memory), so the
// board group nests where this process is allowed to make groups.
function ownV1Path(controller) {
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const [, controllers, path] = line.split(':');
    if (controllers?.split(',').includes(controller)) return path;
  }
  return '/';
}

function isV2() {
  const file = join(ROOT, 'cgroup.controllers');
  return existsSync(file) && ['cpu', 'memory'].every((c) => readFileSync(file, 'utf8').split(/\s+/).includes(c));
}

export function boardCgroup(name, { cpuPercent = 25, memoryMiB = 128 } = {}) {
  const periodUs = 100_000;
  const quotaUs = Math.round((periodUs * cpuPercent) / 100);
  const bytes = memoryMiB * 1024 * 1024;
  let dirs;
  let memoryDir;
  let version;
  if (isV2()) {
    version = 2;
    memoryDir = join(ROOT, name);
    mkdirSync(memoryDir);
    writeFileSync(join(memoryDir, 'cpu.max'), `${quotaUs} ${periodUs}`);
    writeFileSync(join(memoryDir, 'memory.max'), String(bytes));
    if (existsSync(join(memoryDir, 'memory.swap.max'))) writeFileSync(join(memoryDir, 'memory.swap.max'), '0');
    dirs = [memoryDir];
  } else {
    version = 1;
    const cpuDir = join(ROOT, 'cpu', ownV1Path('cpu'), name);
    memoryDir = join(ROOT, 'memory', ownV1Path('memory'), name);
    mkdirSync(cpuDir);
    mkdirSync(memoryDir);
    writeFileSync(join(cpuDir, 'cpu.cfs_period_us'), String(periodUs));
    writeFileSync(join(cpuDir, 'cpu.cfs_quota_us'), String(quotaUs));
    writeFileSync(join(memoryDir, 'memory.limit_in_bytes'), String(bytes));
    // No swap either: a board has none, and swapping would hide the limit.
    if (existsSync(join(memoryDir, 'memory.memsw.limit_in_bytes'))) writeFileSync(join(memoryDir, 'memory.memsw.limit_in_bytes'), String(bytes));
    dirs = [cpuDir, memoryDir];
  }
  const procs = dirs.map((d) => join(d, 'cgroup.procs'));
  const read = (file) => readFileSync(join(memoryDir, file), 'utf8');
  return {
    version,
    describe: `${cpuPercent}% of one CPU, ${memoryMiB} MiB (cgroup v${version})`,
    /** Prefix for spawn: `[...launcher, command, ...args]`. */
    launcher: ['sh', '-c', `${procs.map((p) => `echo $$ > ${p}`).join(' && ')} && exec "$@"`, 'sh'],
    /** OOM kills in the group since it was made. */
    oomKills() {
      const text = version === 2 ? read('memory.events') : read('memory.oom_control');
      return Number(/oom_kill (\d+)/.exec(text)?.[1] ?? 0);
    },
    /** The group's peak memory (page cache included) since the last reset, or null where the kernel does not keep it. */
    peakMiB() {
      const file = version === 2 ? 'memory.peak' : 'memory.max_usage_in_bytes';
      return existsSync(join(memoryDir, file)) ? Number(read(file)) / 1048576 : null;
    },
    resetPeak() {
      if (version === 1) writeFileSync(join(memoryDir, 'memory.max_usage_in_bytes'), '0');
    },
    remove() {
      for (const file of procs) {
        if (!existsSync(file)) continue;
        for (const pid of readFileSync(file, 'utf8').split('\n').filter(Boolean)) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            // gone already
          }
        }
      }
      for (const dir of dirs) {
        for (let tries = 0; tries < 50; tries++) {
          try {
            rmdirSync(dir);
            break;
          } catch {
            Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20); // killed processes take a moment to leave
          }
        }
      }
    },
  };
}
