// depmod's binary indexes read as libkmod reads them: a modules tree made by the real depmod
// from small modules (an ELF object with a .modinfo section each), looked up by our reader and
// by the real `modprobe -R` (libkmod) side by side, and by the text files' reading.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KmodIndex } from './kmod-index.js';
import { loadModuleIndex, normaliseAlias } from './module-index.js';

const VERSION = '6.1.0-test';
const MODULES: Record<string, string[]> = {
  ftdi_sio: ['usb:v0403p6001d*dc*dsc*dp*ic*isc*ip*in*', 'usb:v0403p6010d*dc*dsc*dp*ic*isc*ip*in*'],
  cdc_ether: ['usb:v*p*d*dc*dsc*dp*ic02isc06ip00in*'],
  usbhid: ['usb:v*p*d*dc*dsc*dp*ic03isc*ip*in*'],
  battery: ['acpi*:PNP0C0A:*'],
  ahci_like: ['pci:v00008086d0000[1-2]92[2-3]sv*sd*bc*sc*i*'],
  'intel-spi-platform': ['platform:intel-spi'],
  hid_generic: ['hid:b*g0001v*p*'],
  serio_any: ['serio:ty01pr*id*ex*', 'serio:ty0?pr00id00ex00'],
};
const BUILTIN_MODINFO = '8250.alias=platform:serial8250\0tracefs.alias=fs-tracefs\0';
const ALIASES = [
  'usb:v0403p6001d0600dc00dsc00dp00icFFiscFFipFFin00', 'usb:v0403p6010d0700dc00dsc00dp00icFFiscFFipFFin01',
  'usb:v0525pA4A2d0000dc02dsc00dp00ic02isc06ip00in00', 'usb:v0627p0001d0000dc00dsc00dp00ic03isc01ip01in00',
  'acpi:PNP0C0A:', 'acpi:LNXCPU:', 'pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01', 'pci:v00008086d00002932sv0sd0bc0sc0i0',
  'platform:intel-spi', 'platform:intel_spi', 'platform:serial8250', 'hid:b0003g0001v00000627p00000001', 'serio:ty01pr00id00ex00',
  'serio:ty06pr00id00ex00', 'cpu:type:x86,ven0002fam000Fmod006B:feature:,0000', 'ftdi_sio', 'ftdi-sio', 'usb:', '',
];

let root: string;
let modules: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'hotplugd-kmod-'));
  modules = join(root, 'lib/modules', VERSION);
  const drivers = join(modules, 'kernel/drivers');
  mkdirSync(drivers, { recursive: true });
  writeFileSync(join(root, 'empty.c'), 'int hotplugd_test;\n');
  execFileSync('gcc', ['-c', join(root, 'empty.c'), '-o', join(root, 'empty.o')]);
  for (const [name, aliases] of Object.entries(MODULES)) {
    const modinfo = join(root, `${name}.modinfo`);
    writeFileSync(modinfo, [...aliases.map((a) => `alias=${a}`), `name=${name}`, `vermagic=${VERSION} SMP mod_unload`, 'depends=', ''].join('\0'));
    execFileSync('objcopy', ['--add-section', `.modinfo=${modinfo}`, '--set-section-flags', '.modinfo=alloc,readonly', join(root, 'empty.o'), join(drivers, `${name}.ko`)]);
  }
  writeFileSync(join(modules, 'modules.builtin'), 'kernel/drivers/tty/serial/8250/8250.ko\nkernel/fs/tracefs/tracefs.ko\n');
  writeFileSync(join(modules, 'modules.builtin.modinfo'), BUILTIN_MODINFO);
  execFileSync('depmod', ['-b', root, VERSION], { stdio: 'pipe' });
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

/** libkmod's answer: `modprobe -R` prints the modules an alias resolves to. */
function modprobeResolves(alias: string): string[] {
  try {
    return execFileSync('modprobe', ['-d', root, '-S', VERSION, '-C', join(root, 'no-conf'), '-R', '--', alias], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n').filter(Boolean);
  } catch {
    return []; // exit 1: no module
  }
}

describe("depmod's binary indexes", () => {
  it('finds what libkmod finds for every alias, and what the text files give', () => {
    const aliases = ALIASES.filter(Boolean);
    const expected = aliases.map((alias) => ({ alias, modules: [...new Set(modprobeResolves(alias))].sort() })); // each once
    expect(expected.filter((e) => e.modules.length > 0).length).toBeGreaterThan(10);
    const binary = loadModuleIndex(modules, [], join(root, 'sys-module'))!;
    expect(aliases.map((alias) => ({ alias, modules: binary.modulesFor(alias).sort() }))).toEqual(expected);
    rmSync(join(modules, 'modules.alias.bin'));
    try {
      const text = loadModuleIndex(modules, [], join(root, 'sys-module'))!;
      expect(aliases.map((alias) => ({ alias, modules: text.modulesFor(alias).sort() }))).toEqual(expected);
    } finally {
      execFileSync('depmod', ['-b', root, VERSION], { stdio: 'pipe' });
    }
  });

  it('looks up exact keys and wildcard patterns, ordered by priority', () => {
    const deps = KmodIndex.open(join(modules, 'modules.dep.bin'))!;
    expect(deps.lookup('ftdi_sio').map((v) => v.value)).toEqual(['kernel/drivers/ftdi_sio.ko:']);
    expect(deps.lookup('ftdi_si')).toEqual([]);
    expect(deps.lookup('ftdi_sio_x')).toEqual([]);
    const aliases = KmodIndex.open(join(modules, 'modules.alias.bin'))!;
    expect(aliases.searchWild(normaliseAlias('usb:v0525pA4A2d0000dc02dsc00dp00ic02isc06ip00in00')).map((v) => v.value)).toEqual(['cdc_ether']);
    expect(aliases.searchWild('')).toEqual([]);
    expect(KmodIndex.open(join(root, 'empty.c'))).toBeUndefined();
    expect(() => new KmodIndex(Buffer.from('not an index at all'))).toThrow(/not a depmod index/);
  });
});
