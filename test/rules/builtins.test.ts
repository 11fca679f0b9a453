// The udev builtins on real sysfs layouts: systemd's own fake tree (a Nokia phone on
// cdc_acm, a USB stick on usb-storage, an i8042 keyboard, an e1000e interface), each
// builtin run as udev rules run it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { builtin, builtinNames } from '../../src/builtins/registry.js';
import { useHwdb } from '../../src/builtins/hwdb.js';
import { HwdbText } from '../../src/builtins/hwdb-text.js';
import type { BuiltinContext } from '../../src/rules/builtin.js';
import { Sysfs } from '../../src/uevent/sysfs.js';
import { prepareSysfs } from '../conformance/udev-harness.js';

const work = mkdtempSync(join(tmpdir(), 'hotplugd-builtins-'));
afterAll(() => {
  useHwdb(undefined);
  rmSync(work, { recursive: true, force: true });
});
const sysfs = new Sysfs(prepareSysfs(work));

function context(devpath: string, action = 'add'): BuiltinContext {
  const event = sysfs.synthesizeEvent(devpath, action, 'coldplug');
  if (!event) throw new Error(`no device ${devpath}`);
  return { device: sysfs.device(devpath), devpath, subsystem: event.subsystem, action, properties: event.properties, devnode: event.devname ? `/dev/${event.devname}` : null };
}

const run = (name: string, argv: string[], ctx: BuiltinContext) => builtin(name)!.run([name, ...argv], ctx);
const ACM = '/devices/pci0000:00/0000:00:1d.7/usb5/5-2/5-2:1.0/tty/ttyACM0';
const SDB = '/devices/pci0000:00/0000:00:1d.7/usb5/5-1/5-1:1.0/host7/target7:0:0/7:0:0:0/block/sdb';

describe('builtins', () => {
  it('has one entry per builtin udev rules name', () => {
    expect(builtinNames()).toEqual(expect.arrayContaining(['usb_id', 'path_id', 'input_id', 'kmod', 'hwdb', 'net_id', 'blkid', 'uaccess', 'keyboard', 'btrfs', 'net_setup_link']));
    expect(run('uaccess', [], context(ACM))).toMatchObject({ failed: expect.stringContaining('not supported'), unsupported: true });
  });

  it('usb_id: vendor, model, serial and interfaces of the phone behind ttyACM0', () => {
    expect(run('usb_id', [], context(ACM))).toEqual({
      properties: expect.objectContaining({
        ID_VENDOR: 'Nokia', ID_VENDOR_ID: '0421', ID_MODEL: 'N78', ID_MODEL_ID: '007b', ID_REVISION: '0100',
        ID_SERIAL: 'Nokia_N78_354172020305000', ID_SERIAL_SHORT: '354172020305000', ID_BUS: 'usb',
        ID_USB_INTERFACE_NUM: '00', ID_USB_DRIVER: 'cdc_acm', ID_TYPE: 'generic', ID_USB_SERIAL: 'Nokia_N78_354172020305000',
        ID_USB_INTERFACES: expect.stringMatching(/^:(\w{6}:)+$/),
      }),
    });
    const disk = run('usb_id', [], context(SDB));
    expect(disk).toMatchObject({ properties: { ID_TYPE: 'disk', ID_BUS: 'usb', ID_INSTANCE: '0:0' } });
  });

  it('path_id: the bus path of a SATA disk and of a USB stick', () => {
    expect(run('path_id', [], context('/devices/pci0000:00/0000:00:1f.2/host0/target0:0:0/0:0:0:0/block/sda'))).toEqual({
      properties: { ID_PATH: 'pci-0000:00:1f.2-scsi-0:0:0:0', ID_PATH_TAG: 'pci-0000_00_1f_2-scsi-0_0_0_0' },
    });
    expect(run('path_id', [], context(SDB))).toMatchObject({ properties: { ID_PATH: 'pci-0000:00:1d.7-usb-0:1:1.0-scsi-0:0:0:0' } });
    expect(run('path_id', [], context('/devices/virtual/tty/console'))).toMatchObject({ failed: expect.any(String) });
  });

  it('input_id: the i8042 keyboard', () => {
    expect(run('input_id', [], context('/devices/platform/i8042/serio0/input/input0/event0'))).toMatchObject({ properties: { ID_INPUT: '1', ID_INPUT_KEY: '1', ID_INPUT_KEYBOARD: '1' } });
  });

  it('net_id: the path name of the e1000e interface; no MAC name when the kernel does not say the address is permanent', () => {
    const out = run('net_id', [], context('/devices/pci0000:00/0000:00:1c.0/0000:02:00.0/net/eth0'));
    // This tree predates addr_assign_type, so udev (and hotplugd) give no ID_NET_NAME_MAC.
    expect(out).toEqual({ properties: { ID_NET_NAMING_SCHEME: 'v252', ID_NET_NAME_PATH: 'enp2s0' } });
  });

  it('kmod load hands aliases to the module loader; blkid runs the blkid program on the node', () => {
    expect(run('kmod', ['load', 'usb:v0421p007B'], context(ACM))).toEqual({ modules: ['usb:v0421p007B'] });
    expect(run('kmod', ['unload'], context(ACM))).toMatchObject({ failed: expect.any(String) });
    // No alias: the device's MODALIAS, as udev (Debian's 80-drivers.rules: RUN{builtin}+="kmod load").
    const withAlias = context(ACM);
    expect(run('kmod', ['load'], { ...withAlias, properties: { ...withAlias.properties, MODALIAS: 'usb:v1A86p7523' } })).toEqual({ modules: ['usb:v1A86p7523'] });
    expect(run('kmod', ['load'], { ...withAlias, properties: { ...withAlias.properties, MODALIAS: '' } })).toEqual({ modules: [] });
    expect(run('blkid', [], context(SDB))).toEqual({ program: [expect.stringMatching(/\/blkid$/), '-p', '-o', 'udev', '/dev/sdb'], emptyExitCodes: [2] });
  });

  it('hwdb: looks up the interface modalias, later entries overriding earlier ones', () => {
    const db = new HwdbText();
    db.add('usb:v0421*\n ID_VENDOR_FROM_DATABASE=Nokia Mobile Phones\n\nusb:v0421p007B*\nusb:v0421p007C*\n ID_MODEL_FROM_DATABASE=N78 (PC-Suite)\n');
    db.add('# a later file\nusb:v0421p007B*\n ID_MODEL_FROM_DATABASE=N78\n');
    useHwdb(db);
    expect(run('hwdb', ['--subsystem=usb'], context(ACM))).toEqual({ properties: { ID_VENDOR_FROM_DATABASE: 'Nokia Mobile Phones', ID_MODEL_FROM_DATABASE: 'N78' } });
    expect(run('hwdb', ['usb:v0421p007C'], context(ACM))).toEqual({ properties: { ID_VENDOR_FROM_DATABASE: 'Nokia Mobile Phones', ID_MODEL_FROM_DATABASE: 'N78 (PC-Suite)' } });
    expect(run('hwdb', ['--subsystem=pci'], context(ACM))).toMatchObject({ failed: expect.any(String) });
  });
});
