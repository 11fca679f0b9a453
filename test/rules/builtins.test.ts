// The udev builtins on real sysfs layouts: systemd's own fake tree (a Nokia phone on
// cdc_acm, a USB stick on usb-storage, an i8042 keyboard, an e1000e interface), each
// builtin run as udev rules run it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { builtin, builtinNames } from '../../src/builtins/registry.js';
import { packedInterfaces } from '../../src/builtins/usb_id.js';
import { exportedByUdev } from '../../src/builtins/blkid.js';
import { useHwdb } from '../../src/builtins/hwdb.js';
import { HwdbText } from '../../src/builtins/hwdb-text.js';
import type { BuiltinContext } from '../../src/rules/builtin.js';
import { Sysfs } from '../../src/uevent/sysfs.js';
import { prepareSysfs } from '../conformance/udev-harness.js';
import { buildFakeSysfs } from '../helpers/fake-sysfs.js';

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
    // As udev v252: the SCSI target:lun ends the serial (by-id links of sticks carry "-0:0").
    const { ID_SERIAL, ID_USB_SERIAL } = (disk as { properties: Record<string, string> }).properties;
    expect(ID_SERIAL).toMatch(/-0:0$/);
    expect(ID_USB_SERIAL).toBe(ID_SERIAL);
  });

  it('usb_id: with ID_BUS already set, only the ID_USB_ names; the usb_device itself has no type', () => {
    const acm = context(ACM);
    const out = run('usb_id', [], { ...acm, properties: { ...acm.properties, ID_BUS: 'ata' } }) as { properties: Record<string, string> };
    expect(Object.keys(out.properties).filter((k) => !k.startsWith('ID_USB_'))).toEqual([]);
    expect(out.properties.ID_USB_MODEL).toBe('N78');
    const device = run('usb_id', [], context('/devices/pci0000:00/0000:00:1d.7/usb5/5-2')) as { properties: Record<string, string> };
    expect(device.properties).toMatchObject({ ID_BUS: 'usb', ID_MODEL: 'N78' });
    expect(device.properties.ID_TYPE).toBeUndefined();
    expect(device.properties.ID_USB_INTERFACE_NUM).toBeUndefined();
  });

  it("usb_id's interface list: every interface descriptor of every configuration, once each, in descriptor order", () => {
    const device = Buffer.from([18, 1, ...new Array(16).fill(0)]);
    const config = Buffer.from([9, 2, 0, 0, 2, 1, 0, 0x80, 50]);
    const iface = (cls: number, sub: number, proto: number) => Buffer.from([9, 4, 0, 0, 1, cls, sub, proto, 0]);
    const endpoint = Buffer.from([7, 5, 0x81, 3, 8, 0, 10]);
    const descriptors = Buffer.concat([device, config, iface(2, 2, 0xff), endpoint, iface(0x0a, 0, 0), config, iface(2, 6, 0), iface(0x0a, 0, 0), endpoint]);
    expect(packedInterfaces(descriptors)).toBe(':0202ff:0a0000:020600:');
    expect(packedInterfaces(Buffer.from([18, 1]))).toBeUndefined();
    expect(packedInterfaces(undefined)).toBeUndefined();
  });

  it('path_id: the bus path of a SATA disk and of a USB stick', () => {
    expect(run('path_id', [], context('/devices/pci0000:00/0000:00:1f.2/host0/target0:0:0/0:0:0:0/block/sda'))).toEqual({
      properties: { ID_PATH: 'pci-0000:00:1f.2-scsi-0:0:0:0', ID_PATH_TAG: 'pci-0000_00_1f_2-scsi-0_0_0_0' },
    });
    expect(run('path_id', [], context(SDB))).toMatchObject({ properties: { ID_PATH: 'pci-0000:00:1d.7-usb-0:1:1.0-scsi-0:0:0:0' } });
    expect(run('path_id', [], context('/devices/virtual/tty/console'))).toMatchObject({ failed: expect.any(String) });
  });

  it("path_id: an ATA drive as udev v252 names it (ata-PORT.TARGET), with the older name as ID_PATH_ATA_COMPAT", () => {
    const ahci = '/devices/pci0000:00/0000:00:1f.2';
    const drive = `${ahci}/ata3/host2/target2:0:0/2:0:0:0`;
    const tree = buildFakeSysfs({
      [ahci]: { _subsystem: 'pci', uevent: 'PCI_SLOT_NAME=0000:00:1f.2' },
      [`${ahci}/ata3`]: {},
      [`${ahci}/ata3/ata_port/ata3`]: { _subsystem: 'ata_port', port_no: '3' },
      [`${ahci}/ata3/host2`]: { _subsystem: 'scsi', uevent: 'DEVTYPE=scsi_host' },
      [`${ahci}/ata3/host2/target2:0:0`]: { _subsystem: 'scsi', uevent: 'DEVTYPE=scsi_target' },
      [drive]: { _subsystem: 'scsi', uevent: 'DEVTYPE=scsi_device', type: '5' },
      [`${drive}/block/sr0`]: { _subsystem: 'block', uevent: 'MAJOR=11\nMINOR=0\nDEVNAME=sr0\nDEVTYPE=disk' },
    });
    try {
      const ata = new Sysfs(tree.root);
      const devpath = `${drive}/block/sr0`;
      const event = ata.synthesizeEvent(devpath, 'add', 'coldplug')!;
      const out = run('path_id', [], { device: ata.device(devpath), devpath, subsystem: 'block', action: 'add', properties: event.properties, devnode: '/dev/sr0' });
      expect(out).toEqual({ properties: { ID_PATH: 'pci-0000:00:1f.2-ata-3.0', ID_PATH_TAG: 'pci-0000_00_1f_2-ata-3_0', ID_PATH_ATA_COMPAT: 'pci-0000:00:1f.2-ata-3' } });
    } finally {
      tree.remove();
    }
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
    expect(run('blkid', [], context(SDB))).toEqual({ program: [expect.stringMatching(/\/blkid$/), '-p', '-o', 'udev', '/dev/sdb'], emptyExitCodes: [2], keep: exportedByUdev });
    expect(['ID_FS_UUID', 'ID_FS_LABEL_ENC', 'ID_PART_ENTRY_NAME', 'ID_PART_TABLE_UUID'].filter(exportedByUdev)).toHaveLength(4);
    expect(['ID_FS_BLOCK_SIZE', 'ID_FS_SEC_TYPE', 'ID_FS_LABEL_FATBOOT', 'ID_FS_LABEL_FATBOOT_ENC', 'ID_FS_LASTBLOCK'].filter(exportedByUdev)).toEqual([]);
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
