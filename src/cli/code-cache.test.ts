// The code cache: named by all V8 checks and more, trusted only where private, and used by
// the real entry point (dist/cli/main.js) for commands and the daemon.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openCodeCache } from './code-cache.js';

const CLI = join(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js');

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hotplugd-code-cache-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const cacheFiles = (at: string): string[] => readdirSync(at).filter((name) => name.startsWith('code-')).sort();

describe('openCodeCache', () => {
  it('keeps one file per bundle, node, flags and kind of command, private to this user', () => {
    const bundle = join(dir, 'bundle.cjs');
    writeFileSync(bundle, 'one');
    const at = join(dir, 'cache');
    expect(openCodeCache(bundle, at, 'command').data).toBeUndefined();
    expect(openCodeCache(bundle, at, 'command').save(() => Buffer.from('code'))).toBeUndefined();
    expect(statSync(at).mode & 0o777).toBe(0o700);
    const [file] = cacheFiles(at);
    expect(statSync(join(at, file as string)).mode & 0o777).toBe(0o600);
    expect(openCodeCache(bundle, at, 'command').data?.toString()).toBe('code');
    expect(openCodeCache(bundle, at, 'daemon').data).toBeUndefined();
    // A rebuilt bundle of the same length: V8 would take the old code for it.
    writeFileSync(bundle, 'two');
    utimesSync(bundle, new Date(), new Date(Date.now() + 2_000));
    expect(openCodeCache(bundle, at, 'command').data).toBeUndefined();
    expect(openCodeCache(bundle, undefined, 'command').data).toBeUndefined();
  });

  it('neither reads nor writes where others can write', () => {
    const bundle = join(dir, 'bundle.cjs');
    writeFileSync(bundle, 'one');
    const at = join(dir, 'cache');
    openCodeCache(bundle, at, 'command').save(() => Buffer.from('code'));
    const file = join(at, cacheFiles(at)[0] as string);
    chmodSync(file, 0o666);
    expect(openCodeCache(bundle, at, 'command').data).toBeUndefined();
    chmodSync(file, 0o600);
    chmodSync(at, 0o777);
    expect(openCodeCache(bundle, at, 'command').data).toBeUndefined();
    expect(openCodeCache(bundle, at, 'command').save(() => Buffer.from('other'))).toMatch(/only it can write/);
  });

  it('keeps the four newest files and clears what a killed writer left', () => {
    const bundle = join(dir, 'bundle.cjs');
    const at = join(dir, 'cache');
    mkdirSync(at, { mode: 0o700 });
    const old = new Date(Date.now() - 3_600_000);
    writeFileSync(join(at, `code-${'a'.repeat(32)}.bin.123.tmp`), 'half');
    utimesSync(join(at, `code-${'a'.repeat(32)}.bin.123.tmp`), old, old);
    for (let i = 0; i < 6; i++) {
      // Each earlier file a minute older, so the newest is always the one just written.
      for (const name of cacheFiles(at)) {
        const mtime = statSync(join(at, name)).mtime;
        utimesSync(join(at, name), mtime, new Date(mtime.getTime() - 60_000));
      }
      writeFileSync(bundle, `bundle ${i}`);
      expect(openCodeCache(bundle, at, 'command').save(() => Buffer.from(`code ${i}`))).toBeUndefined();
    }
    expect(cacheFiles(at)).toHaveLength(4);
    expect(cacheFiles(at).some((name) => name.endsWith('.tmp'))).toBe(false);
    expect(openCodeCache(bundle, at, 'command').data?.toString()).toBe('code 5');
  });
});

describe('dist/cli/main.js', () => {
  const run = (env: NodeJS.ProcessEnv, ...args: string[]): string => execFileSync(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, encoding: 'utf8' });

  it('writes the cache on the first run, reads it after, and replaces one V8 refuses', () => {
    const env = { HOTPLUGD_CODE_CACHE: dir };
    const help = run(env, 'help');
    expect(help).toMatch(/Usage|usage/);
    const [file] = cacheFiles(dir);
    expect(file).toBeDefined();
    const written = statSync(join(dir, file as string));
    expect(written.size).toBeGreaterThan(10_000);
    expect(run(env, 'help')).toBe(help);
    // Taken, so not written again (a new file would have a new inode).
    expect(statSync(join(dir, file as string)).ino).toBe(written.ino);
    // Other flags: another file, as V8 refuses code compiled under other flags.
    run({ ...env, NODE_OPTIONS: '--max-semi-space-size=2' }, 'help');
    expect(cacheFiles(dir)).toHaveLength(2);
    // Garbage in place of the cache: refused by V8, the command still runs, the file is replaced.
    writeFileSync(join(dir, file as string), Buffer.alloc(written.size, 7), { mode: 0o600 });
    expect(run(env, 'help')).toBe(help);
    expect(statSync(join(dir, file as string)).ino).not.toBe(written.ino);
    expect(statSync(join(dir, file as string)).size).toBeGreaterThan(10_000);
  });

  it('runs a bundle of ASCII only, which V8 keeps at one byte per character, and without import()', () => {
    const source = readFileSync(join(import.meta.dirname, '..', '..', 'dist', 'cli', 'hotplugd.cjs'), 'latin1');
    expect(source.length).toBeGreaterThan(100_000);
    // A script from the code cache has no dynamic-import callback on Node 20.
    expect(source.match(/\bimport\(.{0,40}/g) ?? []).toEqual([]);
    // eslint-disable-next-line no-control-regex
    expect(source.match(/[^\x00-\x7f].{0,40}/g) ?? []).toEqual([]);
  });

  it('runs with no cache at all', () => {
    expect(run({ HOTPLUGD_CODE_CACHE: 'none' }, 'help')).toMatch(/Usage|usage/);
    expect(cacheFiles(dir)).toHaveLength(0);
  });
});
