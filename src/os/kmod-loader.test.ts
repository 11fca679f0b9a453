// Modules loaded in process as libkmod loads them: the order (dependencies, soft dependencies)
// and options compared with the real `modprobe --show-depends` on a tree made by the real
// depmod; what is loaded already, the blacklist and the cases left to modprobe; and the
// loader's results (a fake finit_module: these modules are never inserted).
import { copyFileSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kmodTree, type KmodTree } from '../../test/helpers/kmod-tree.js';
import { ModuleLoader } from '../actions/modules.js';
import { ProgramPool } from '../actions/run.js';
import { KernelModuleLoader, parseModprobeConfig, planInsert } from './kmod-loader.js';
import { KernelModules, loadModuleIndex } from './module-index.js';

let tree: KmodTree;

beforeAll(() => {
  tree = kmodTree({
    usb_common_t: { exports: ['usb_common_sym'] },
    usbcore_t: { exports: ['usbcore_sym'], uses: ['usb_common_sym'] },
    usbserial_t: { exports: ['usbserial_sym'], uses: ['usbcore_sym'] },
    ftdi_sio_t: { aliases: ['usb:v0403p6001d*dc*dsc*dp*ic*isc*ip*in*'], uses: ['usbserial_sym', 'usbcore_sym'] },
    crc_t: { exports: ['crc_sym'] },
    crc_user_t: { uses: ['crc_sym'] },
    led_t: {},
    cdc_ether_t: { aliases: ['usb:v*p*d*dc*dsc*dp*ic02isc06ip00in*'], uses: ['usbcore_sym'] },
    blocked_t: { aliases: ['usb:v1234p5678d*dc*dsc*dp*ic*isc*ip*in*'] },
    fancy_t: { aliases: ['platform:fancy'] },
  });
  writeFileSync(join(tree.conf, 'board.conf'), [
    'softdep ftdi_sio_t pre: crc_user_t post: led_t',
    'options ftdi_sio_t latency=4 \\',
    '  mode=2',
    '# a comment',
    'options usbcore_t autosuspend=-1',
    'blacklist blocked_t',
    'install fancy_t /sbin/fancy-loader',
  ].join('\n'));
});

afterAll(() => tree?.remove());

const FTDI = 'usb:v0403p6001d0600dc00dsc00dp00icFFiscFFipFFin00';
const CDC = 'usb:v0525pA4A2d0000dc02dsc00dp00ic02isc06ip00in00';

function loader(insert: (path: string, params: string, flags: number) => Promise<number> = async () => 0, sysModule = join(tree.root, 'sys-module')) {
  return new KernelModuleLoader({ dir: tree.modules, insert, confDirs: [tree.conf], cmdline: join(tree.root, 'cmdline'), sysModule });
}

const indexOf = () => loadModuleIndex(tree.modules, [tree.conf], join(tree.root, 'sys-module'))!;

describe('modules loaded in process', () => {
  it('loads in the order and with the options libkmod uses', () => {
    const index = loadModuleIndex(tree.modules, [tree.conf], join(tree.root, 'sys-module'))!;
    for (const alias of [FTDI, CDC]) {
      const expected = tree.showDepends(alias);
      expect(expected.length).toBeGreaterThan(2);
      const plan = loader().plan(index.modulesFor(alias), index);
      expect(plan.kind).toBe('insert');
      if (plan.kind !== 'insert') continue;
      expect(plan.steps.map((s) => [s.name, s.params].filter(Boolean).join(' '))).toEqual(expected);
      expect(plan.steps.every((s) => s.path.startsWith(`${tree.modules}/kernel/`))).toBe(true);
    }
  });

  it('skips what is loaded or built in, keeps blacklisted modules out, and leaves install commands to modprobe', () => {
    const sysModule = join(tree.root, 'sys-loaded');
    mkdirSync(join(sysModule, 'usb_common_t'), { recursive: true });
    writeFileSync(join(sysModule, 'usb_common_t', 'initstate'), 'live\n');
    mkdirSync(join(sysModule, 'usbcore_t'), { recursive: true }); // built in: no initstate
    mkdirSync(join(sysModule, 'usbserial_t'), { recursive: true });
    writeFileSync(join(sysModule, 'usbserial_t', 'initstate'), 'going\n');
    const index = indexOf();
    const plan = loader(undefined, sysModule).plan(['ftdi_sio_t'], index);
    expect(plan.kind === 'insert' && plan.steps.map((s) => s.name)).toEqual(['usbserial_t', 'crc_t', 'crc_user_t', 'ftdi_sio_t', 'led_t']);
    expect(plan.kind === 'insert' && plan.steps.filter((s) => !s.required).map((s) => s.name)).toEqual(['crc_t', 'crc_user_t', 'led_t']);
    expect(loader().plan(['blocked_t'], index)).toEqual({ kind: 'insert', steps: [], blacklisted: ['blocked_t'] });
    expect(loader().plan(['fancy_t'], index)).toEqual({ kind: 'modprobe', why: 'fancy_t: an install command' });
    expect(loader().plan(['not_there'], index)).toEqual({ kind: 'modprobe', why: 'not_there: not in modules.dep' });
  });

  it("plans from depmod's files read again once depmod rewrote them (looked at once a second)", () => {
    let clock = 1_000_000;
    const modules = new KernelModules(tree.modules, () => clock);
    const kernel = loader();
    expect(kernel.plan(['late_t'], modules.current()!)).toEqual({ kind: 'modprobe', why: 'late_t: not in modules.dep' });
    copyFileSync(join(tree.modules, 'kernel/drivers/led_t.ko'), join(tree.modules, 'kernel/drivers/late_t.ko'));
    tree.depmod();
    const later = new Date(Date.now() + 5000);
    utimesSync(join(tree.modules, 'modules.alias.bin'), later, later);
    clock += 500;
    expect(kernel.plan(['late_t'], modules.current()!).kind).toBe('modprobe');
    clock += 600;
    expect(kernel.plan(['late_t'], modules.current()!)).toMatchObject({ kind: 'insert', steps: [{ name: 'late_t' }] });
  });

  it('gives the kernel a compressed module it can decompress itself, and leaves the others to modprobe', () => {
    const lookup = (module: string) => ({ a: { path: '/m/a.ko.xz', deps: [] }, b: { path: '/m/b.ko.zst', deps: ['a'] } })[module];
    const config = parseModprobeConfig([]);
    const plan = planInsert(['b'], lookup, config, () => false, 'zstd');
    expect(plan).toEqual({ kind: 'modprobe', why: 'a: compressed (/m/a.ko.xz)' });
    expect(planInsert(['a'], lookup, config, () => false, 'xz')).toEqual({ kind: 'insert', blacklisted: [], steps: [{ name: 'a', path: '/m/a.ko.xz', params: '', flags: 4, required: true }] });
    expect(planInsert(['a'], lookup, config, () => false, '')).toMatchObject({ kind: 'modprobe' });
  });

  it('reads options and the blacklist from the kernel command line too', () => {
    const config = parseModprobeConfig(['options a x=1\nsoftdep b pre: c-d post: e\n'], 'root=/dev/sda1 quiet a.y=2 usb-storage.quirks="0781:5567:u" modprobe.blacklist=evil,bad-one 8250.nr_uarts=4 =x .z=1');
    expect(config.options.get('a')).toEqual(['x=1', 'y=2']);
    expect(config.options.get('usb_storage')).toEqual(['quirks="0781:5567:u"']);
    expect(config.options.get('8250')).toEqual(['nr_uarts=4']);
    expect(config.softdeps.get('b')).toEqual({ pre: ['c_d'], post: ['e'] });
    expect([...config.blacklist]).toEqual(['evil', 'bad_one']);
  });

  it('records a load as udevd does: inserted modules, ENODEV no failure, another error a failure, each alias once', async () => {
    const index = loadModuleIndex(tree.modules, [tree.conf], join(tree.root, 'sys-module'))!;
    const inserted: string[] = [];
    const answers: Record<string, number> = { cdc_ether_t: -19, usbserial_t: -22 };
    const kernel = loader(async (path, params) => {
      const name = path.slice(path.lastIndexOf('/') + 1, -3);
      inserted.push([name, params].filter(Boolean).join(' '));
      return answers[name] ?? 0;
    });
    const modules = new ModuleLoader(new ProgramPool(), '/nonexistent/modprobe', index, kernel);
    const cdc = await modules.load({ alias: CDC, rule: 'r' }, {});
    expect(cdc).toMatchObject({ kind: 'module', target: CDC, ok: true, error: null, stdout: 'inserted usb_common_t usbcore_t', stderr: "cdc_ether_t: ENODEV (as udevd's kmod: not a failure)" });
    expect(await modules.load({ alias: CDC, rule: 'r' }, {})).toBeUndefined();
    const ftdi = await modules.load({ alias: FTDI, rule: 'r' }, {});
    expect(ftdi).toMatchObject({ kind: 'module', ok: false, error: 'usbserial_t: EINVAL' });
    // The dependencies first; a required one that fails ends the load (the soft ones after it never run).
    expect(inserted).toEqual(['usb_common_t', 'usbcore_t autosuspend=-1', 'cdc_ether_t', 'usb_common_t', 'usbcore_t autosuspend=-1', 'usbserial_t']);
    expect(modules.inserted).toBe(2);
    expect(modules.runs).toBe(0);
  });
});
