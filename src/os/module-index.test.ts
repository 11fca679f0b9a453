// The module index: which modules an alias names, as libkmod finds them (fnmatch on normalised
// aliases), from depmod's files, built-in modules and modprobe.d, on a made-up modules tree.
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { KernelModules, loadModuleIndex, normaliseAlias } from './module-index.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tree() {
  const root = mkdtempSync(join(tmpdir(), 'hotplugd-modules-'));
  dirs.push(root);
  const modules = join(root, 'lib/modules/6.1.0-test');
  mkdirSync(modules, { recursive: true });
  writeFileSync(join(modules, 'modules.alias'), [
    '# Aliases extracted from modules themselves.',
    'alias usb:v0403p6001d*dc*dsc*dp*ic*isc*ip*in* ftdi_sio',
    'alias usb:v*p*d*dc*dsc*dp*ic02isc06ip00in* cdc_ether',
    'alias acpi*:PNP0C0A:* battery',
    'alias platform:intel-spi intel_spi_platform',
    'alias pci:v00008086d0000[1-2]92[2-3]sv*sd*bc*sc*i* ahci_like',
  ].join('\n'));
  writeFileSync(join(modules, 'modules.builtin'), 'kernel/drivers/tty/serial/8250/8250.ko\n');
  writeFileSync(join(modules, 'modules.dep'), 'kernel/drivers/scsi/sg.ko:\nkernel/drivers/usb/serial/ftdi_sio.ko: kernel/drivers/usb/serial/usbserial.ko\nkernel/drivers/usb/serial/usbserial.ko:\n');
  writeFileSync(join(modules, 'modules.builtin.modinfo'), '8250.alias=platform:serial8250\x00tracefs.alias=fs-tracefs\x00');
  const conf = join(root, 'etc/modprobe.d');
  mkdirSync(conf, { recursive: true });
  writeFileSync(join(conf, 'local.conf'), 'alias my-board-thing ftdi_sio\noptions ftdi_sio x=1\n');
  const sysModule = join(root, 'sys/module');
  mkdirSync(join(sysModule, 'battery'), { recursive: true });
  return { modules, conf, sysModule };
}

describe('the module index', () => {
  it('finds the modules of an alias as libkmod does', () => {
    const { modules, conf, sysModule } = tree();
    const index = loadModuleIndex(modules, [conf], sysModule)!;
    expect(index.modulesFor('usb:v0403p6001d0600dc00dsc00dp00icFFiscFFipFFin00')).toEqual(['ftdi_sio']);
    expect(index.modulesFor('usb:v0525pA4A2d0000dc02dsc00dp00ic02isc06ip00in00')).toEqual(['cdc_ether']);
    // A wildcard in the bus name, brackets, a dash normalised on both sides.
    expect(index.modulesFor('acpi:PNP0C0A:')).toEqual(['battery']);
    expect(index.modulesFor('pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01')).toEqual(['ahci_like']);
    expect(index.modulesFor('platform:intel_spi')).toEqual(['intel_spi_platform']);
    expect(index.modulesFor('my_board_thing')).toEqual(['ftdi_sio']);
    expect(index.modulesFor('cpu:type:x86,ven0002fam000Fmod006B:feature:,0000')).toEqual([]);
    expect(index.verdict('cpu:type:x86,ven0002')).toEqual({ kind: 'none' });
    expect(index.verdict('acpi:PNP0C0A:')).toEqual({ kind: 'present', modules: ['battery'] });
    expect(index.verdict('platform:serial8250')).toEqual({ kind: 'present', modules: ['8250'] });
    expect(index.verdict('usb:v0403p6001d0600dc00dsc00dp00icFFiscFFipFFin00')).toEqual({ kind: 'load', modules: ['ftdi_sio'] });
    expect(normaliseAlias('platform:a-b[x-y]-c')).toBe('platform:a_b[x-y]_c');
    // A module named, not an alias (Debian's 80-drivers.rules: RUN{builtin}+="kmod load sg").
    expect(index.verdict('sg')).toEqual({ kind: 'load', modules: ['sg'] });
    expect(index.verdict('8250')).toEqual({ kind: 'present', modules: ['8250'] });
  });

  it("has none without the kernel's modules.alias, and reads it again when depmod rewrote it", () => {
    const { modules } = tree();
    expect(loadModuleIndex(join(modules, 'missing'))).toBeUndefined();
    let clock = 1_000_000;
    const kernel = new KernelModules(modules, () => clock);
    expect(kernel.current()!.modulesFor('platform:new_thing')).toEqual([]);
    writeFileSync(join(modules, 'modules.alias'), 'alias platform:new_thing new_driver\n');
    const later = new Date(Date.now() + 5000);
    utimesSync(join(modules, 'modules.alias'), later, later);
    // Looked at once a second at most.
    clock += 500;
    expect(kernel.current()!.modulesFor('platform:new_thing')).toEqual([]);
    clock += 600;
    expect(kernel.current()!.modulesFor('platform:new_thing')).toEqual(['new_driver']);
  });
});
