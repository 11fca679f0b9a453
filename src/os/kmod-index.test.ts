// depmod's binary indexes read as libkmod reads them: a modules tree made by the real depmod
// from small modules (an ELF object with a .modinfo section each), looked up by our reader and
// by the real `modprobe -R` (libkmod) side by side, and by the text files' reading.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kmodTree, type KmodTree } from '../../test/helpers/kmod-tree.js';
import { KmodIndex } from './kmod-index.js';
import { loadModuleIndex, normaliseAlias } from './module-index.js';

const ALIASES_BY_MODULE: Record<string, string[]> = {
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

let tree: KmodTree;
let root: string;
let modules: string;

beforeAll(() => {
  tree = kmodTree(Object.fromEntries(Object.entries(ALIASES_BY_MODULE).map(([name, aliases]) => [name, { aliases }])), BUILTIN_MODINFO);
  ({ root, modules } = tree);
});

afterAll(() => tree?.remove());

describe("depmod's binary indexes", () => {
  it('finds what libkmod finds for every alias, and what the text files give', () => {
    const aliases = ALIASES.filter(Boolean);
    const expected = aliases.map((alias) => ({ alias, modules: tree.resolves(alias).sort() }));
    expect(expected.filter((e) => e.modules.length > 0).length).toBeGreaterThan(10);
    const binary = loadModuleIndex(modules, [], join(root, 'sys-module'))!;
    expect(aliases.map((alias) => ({ alias, modules: binary.modulesFor(alias).sort() }))).toEqual(expected);
    rmSync(join(modules, 'modules.alias.bin'));
    try {
      const text = loadModuleIndex(modules, [], join(root, 'sys-module'))!;
      expect(aliases.map((alias) => ({ alias, modules: text.modulesFor(alias).sort() }))).toEqual(expected);
    } finally {
      tree.depmod();
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
