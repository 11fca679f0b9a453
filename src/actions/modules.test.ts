// Module loading with a stand-in modprobe (a real process that logs its argv).
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeTempDir } from '../../test/helpers/netns.js';
import { ModuleIndex } from '../os/module-index.js';
import { ModuleLoader, NO_MODULE } from './modules.js';
import { ProgramPool } from './run.js';

let dir: { path: string; remove(): void };
let modprobe: string;
const log = () => readFileSync(join(dir.path, 'log'), 'utf8').trim().split('\n').filter(Boolean);

beforeEach(() => {
  dir = makeTempDir('modprobe');
  modprobe = join(dir.path, 'modprobe');
  writeFileSync(join(dir.path, 'log'), '');
  // Slow enough that concurrent requests overlap; fails for aliases starting with "bad"; with
  // -R prints the module of aliases that have one ("bad" ones do, "none" ones do not).
  writeFileSync(modprobe, `#!${process.execPath}
const alias = process.argv.at(-1);
require('fs').appendFileSync(${JSON.stringify(join(dir.path, 'log'))}, process.argv.slice(2).join(' ') + '\\n');
if (process.argv.includes('-R')) {
  if (alias.startsWith('none')) process.exit(1);
  console.log('some_driver');
  process.exit(0);
}
setTimeout(() => process.exit(alias.startsWith('bad') || alias.startsWith('none') ? 1 : 0), 100);
`);
  chmodSync(modprobe, 0o755);
});
afterEach(() => dir.remove());

describe('ModuleLoader', () => {
  it('runs modprobe once for a storm of the same alias, and once per distinct alias', async () => {
    const loader = new ModuleLoader(new ProgramPool(4), modprobe, null);
    const requests = Array.from({ length: 50 }, (_, i) => loader.load({ alias: i % 10 === 0 ? 'usb:other' : 'usb:v1A86p7523', rule: 'r' }, {}));
    const results = (await Promise.all(requests)).filter((r) => r !== undefined);
    expect(log().sort()).toEqual(['-b -q -- usb:other', '-b -q -- usb:v1A86p7523']);
    expect(results.map((r) => [r.kind, r.target, r.ok])).toEqual([['module', 'usb:other', true], ['module', 'usb:v1A86p7523', true]]);
    // Loaded once: later events with the alias run nothing.
    expect(await loader.load({ alias: 'usb:v1A86p7523', rule: 'r' }, {})).toBeUndefined();
    expect(loader.runs).toBe(2);
  });

  it('records a failed load and tries again next time', async () => {
    const loader = new ModuleLoader(new ProgramPool(), modprobe, null);
    expect(await loader.load({ alias: 'bad:alias', rule: 'r' }, {})).toMatchObject({ kind: 'module', ok: false, error: 'exit code 1' });
    expect(await loader.load({ alias: 'bad:alias', rule: 'r' }, {})).toMatchObject({ ok: false });
    // Each failure was checked: the alias does resolve to a module, so it really failed.
    expect(log()).toEqual(['-b -q -- bad:alias', '-q -R -- bad:alias', '-b -q -- bad:alias', '-q -R -- bad:alias']);
  });

  it('an alias with no module is no failure (as udev\'s kmod builtin): recorded as done, with why, and not run again', async () => {
    const loader = new ModuleLoader(new ProgramPool(), modprobe, null);
    expect(await loader.load({ alias: 'none:hub-interface', rule: 'r' }, {})).toMatchObject({ kind: 'module', ok: true, error: null, exitCode: 1, stderr: NO_MODULE });
    expect(await loader.load({ alias: 'none:hub-interface', rule: 'r' }, {})).toBeUndefined();
    expect(log()).toEqual(['-b -q -- none:hub-interface', '-q -R -- none:hub-interface']);
  });

  it('says so when there is no modprobe', async () => {
    const loader = new ModuleLoader(new ProgramPool(), null, null);
    expect(await loader.load({ alias: 'x', rule: 'r' }, {})).toMatchObject({ ok: false, error: 'modprobe not found (reported once; modules are not loaded)' });
    expect(await loader.load({ alias: 'y', rule: 'r' }, {})).toBeUndefined();
  });

  it("answers from the module index without modprobe: no module, or all loaded or built in; runs modprobe only to load", async () => {
    const sysModule = join(dir.path, 'sys-module');
    mkdirSync(join(sysModule, 'usbhid'), { recursive: true });
    const index = ModuleIndex.of([['usb:v*p*d*dc*dsc*dp*ic03isc*ip*in*', 'usbhid'], ['usb:v0403p6001d*', 'ftdi_sio'], ['pci:v00008086d00002922*', 'ahci']], ['ahci'], sysModule);
    const loader = new ModuleLoader(new ProgramPool(), modprobe, index);
    const cpu = 'cpu:type:x86,ven0002fam000Fmod006B:feature:,0000,0002';
    expect(await loader.load({ alias: cpu, rule: 'r' }, {})).toMatchObject({ kind: 'module', target: cpu, ok: true, stderr: NO_MODULE });
    expect(await loader.load({ alias: cpu, rule: 'r' }, {})).toBeUndefined();
    expect(await loader.load({ alias: 'usb:v0627p0001d0000dc00dsc00dp00ic03isc01ip01in00', rule: 'r' }, {})).toBeUndefined(); // usbhid is loaded
    expect(await loader.load({ alias: 'pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01', rule: 'r' }, {})).toBeUndefined(); // ahci is built in
    expect(await loader.load({ alias: 'usb:v0403p6001d0600dc00dsc00dp00icFFiscFFipFFin00', rule: 'r' }, {})).toMatchObject({ ok: true, exitCode: 0 });
    expect(log()).toEqual(['-b -q -- usb:v0403p6001d0600dc00dsc00dp00icFFiscFFipFFin00']);
    expect(loader.answered).toBe(3);
  });
});
