// Real processes: timeouts, exit codes, signals, environment and argv, output bounds.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ProgramPool, runProgram } from './run.js';

const NODE = process.execPath;
const js = (code: string) => [NODE, '-e', code];

describe('runProgram', () => {
  it('passes argv exactly and only the given environment, stdin closed, cwd /', async () => {
    const hostile = ['$(reboot)', ';rm -rf /', 'a\nb', '`id`', 'x'.repeat(4096), '../../etc/passwd'];
    const result = await runProgram(
      [...js('process.stdout.write(JSON.stringify({argv: process.argv.slice(1), env: process.env, cwd: process.cwd(), stdin: require("fs").readFileSync(0, "utf8")}))'), ...hostile],
      { env: { ACTION: 'add', DEVNAME: 'ttyUSB0', WEIRD: 'x;$(y)' }, maxOutputBytes: 64 * 1024 },
    );
    expect(result).toMatchObject({ ok: true, exitCode: 0, signal: null, timedOut: false, error: null });
    const seen = JSON.parse(result.stdout!) as { argv: string[]; env: Record<string, string>; cwd: string; stdin: string };
    expect(seen.argv).toEqual(hostile);
    expect(seen.env).toMatchObject({ ACTION: 'add', DEVNAME: 'ttyUSB0', WEIRD: 'x;$(y)' });
    expect(Object.keys(seen.env).filter((k) => !['ACTION', 'DEVNAME', 'WEIRD', 'PATH'].includes(k))).toEqual([]);
    expect(seen.cwd).toBe('/');
    expect(seen.stdin).toBe('');
  });

  it('records a crash with its exit code and stderr', async () => {
    const result = await runProgram(js('console.error("boom"); process.exit(3)'), { env: {} });
    expect(result).toMatchObject({ ok: false, exitCode: 3, error: 'exit code 3', timedOut: false, stderr: 'boom\n' });
  });

  it('kills a program that sleeps forever at its timeout, children included', async () => {
    const started = Date.now();
    const result = await runProgram(
      js('require("child_process").spawn(process.execPath, ["-e", "setInterval(()=>{}, 1000)"], {stdio: "inherit"}); setInterval(() => {}, 1000)'),
      { env: {}, timeoutMs: 300, graceMs: 200 },
    );
    expect(result).toMatchObject({ ok: false, timedOut: true, signal: 'SIGTERM', error: 'timed out after 300 ms' });
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('escalates to SIGKILL when SIGTERM is ignored', async () => {
    // A shell ignores TERM from its first instruction: Node would need longer than the timeout
    // to start and set its handler on a slow CPU (an arm64 board under emulation).
    const result = await runProgram(['/bin/sh', '-c', "trap '' TERM; while :; do sleep 1; done"], { env: {}, timeoutMs: 200, graceMs: 200 });
    expect(result).toMatchObject({ timedOut: true, signal: 'SIGKILL' });
  });

  it('keeps at most maxOutputBytes of output and drains the rest', async () => {
    const result = await runProgram(js('process.stdout.write("y".repeat(1 << 20))'), { env: {}, maxOutputBytes: 100 });
    expect(result.ok).toBe(true);
    expect(result.stdout).toBe(`${'y'.repeat(100)}\n[truncated]`);
  });

  it('records a program that cannot be started', async () => {
    const result = await runProgram(['/nonexistent/program'], { env: {} });
    expect(result).toMatchObject({ ok: false, error: 'ENOENT: cannot run /nonexistent/program' });
    const denied = await runProgram(['/etc'], { env: {} }); // a directory
    expect(denied).toMatchObject({ ok: false, exitCode: null, error: 'EACCES: cannot run /etc' });
  });

  it('records, never throws, an argument or a value the kernel could not take (a NUL byte)', async () => {
    const result = await runProgram(['/bin/echo', 'a\0b'], { env: { X: 'y\0z' } });
    expect(result).toMatchObject({ ok: false, exitCode: null, error: 'ERR_INVALID_ARG_VALUE: cannot run /bin/echo' });
  });

  it('records EMFILE (no descriptor left for its pipes) as a failure to start, and does not hang', () => {
    const runModule = new URL('../../dist/actions/run.js', import.meta.url).pathname;
    const script = `import { openSync } from 'node:fs';
      const { runProgram } = await import(${JSON.stringify(runModule)});
      try { for (;;) openSync('/dev/null', 'r'); } catch {}
      const result = await runProgram(['/bin/true'], { env: {} });
      process.stdout.write(JSON.stringify({ ok: result.ok, error: result.error, exitCode: result.exitCode }));`;
    const out = execFileSync('/bin/sh', ['-c', `ulimit -n 256; exec "$0" --input-type=module -e "$1"`, process.execPath, script], { encoding: 'utf8', timeout: 20_000 });
    expect(JSON.parse(out)).toEqual({ ok: false, error: 'EMFILE: cannot run /bin/true', exitCode: null });
  });

  it('kills the programs still running when the process that started them exits', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hotplugd-run-'));
    try {
      const pidFile = join(dir, 'pid');
      // A process running a program (which writes its pid and sleeps), then exiting without a stop.
      // The built module (npm run build): a plain node runs it.
      const runModule = new URL('../../dist/actions/run.js', import.meta.url).pathname;
      const script = `const { runProgram } = await import(${JSON.stringify(runModule)});
        void runProgram(['/bin/sh', '-c', 'echo $$ > ${pidFile}; exec sleep 30'], { env: {} });
        const until = Date.now() + 10000;
        while (!require('fs').existsSync(${JSON.stringify(pidFile)}) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
        process.exit(0);`;
      execFileSync(process.execPath, ['--input-type=module', '-e', `import { createRequire } from 'node:module'; const require = createRequire(import.meta.url); ${script}`], { stdio: 'ignore', timeout: 20_000 });
      const pid = Number(readFileSync(pidFile, 'utf8'));
      const alive = () => {
        try {
          return !/^\d+ \([^)]*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
        } catch {
          return false;
        }
      };
      const deadline = Date.now() + 5000;
      while (alive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(alive()).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('ProgramPool', () => {
  it('runs at most its limit at once and queues the rest', async () => {
    const pool = new ProgramPool(3);
    let peak = 0;
    const watch = setInterval(() => (peak = Math.max(peak, pool.running)), 5);
    const results = await Promise.all(Array.from({ length: 9 }, () => pool.run(js('setTimeout(() => {}, 100)'), { env: {} })));
    clearInterval(watch);
    expect(results.every((r) => r.ok)).toBe(true);
    expect(peak).toBe(3);
    expect(pool.running).toBe(0);
  });
});

describe('import programs that find nothing', () => {
  it('take an exit status listed as "nothing found" as empty output and a success; others fail', async () => {
    const { importOutcome } = await import('./run.js');
    const failed = { kind: 'program' as const, target: '/usr/sbin/blkid', rule: null, ok: false, error: 'exit code 2', durationMs: 1, exitCode: 2, stdout: '' };
    expect(importOutcome(failed, [2])).toEqual({ ran: { ...failed, ok: true, error: null }, output: { stdout: '' } });
    expect(importOutcome(failed, undefined)).toEqual({ ran: failed, output: undefined });
    expect(importOutcome({ ...failed, exitCode: 1, error: 'exit code 1' }, [2]).output).toBeUndefined();
    expect(importOutcome({ ...failed, ok: true, error: null, exitCode: 0, stdout: 'ID_FS_TYPE=ext4\n' }, [2]).output).toEqual({ stdout: 'ID_FS_TYPE=ext4\n' });
  });

  it("udev's PROGRAM and IMPORT{program}: a non-zero exit is no match, recorded with its code, not a failure; a timeout still is", async () => {
    const { importOutcome } = await import('./run.js');
    const ataId = { kind: 'program' as const, target: '/usr/lib/udev/ata_id', rule: null, ok: false, error: 'exit code 2', durationMs: 1, exitCode: 2, stdout: '' };
    expect(importOutcome(ataId, undefined, true)).toEqual({ ran: { ...ataId, ok: true, error: null }, output: undefined });
    const hung = { ...ataId, exitCode: null, signal: 'SIGKILL', timedOut: true, error: 'timed out' };
    expect(importOutcome(hung, undefined, true)).toEqual({ ran: hung, output: undefined });
  });
});
