// usb_id: the identity of the USB device above the event's device: ID_VENDOR, ID_MODEL,
// ID_SERIAL (for /dev/serial/by-id and /dev/disk/by-id), ID_TYPE, ID_USB_INTERFACES...
// Every string comes from the device's firmware, so each is cleaned or \x-escaped.
import { replaceChars, replaceWhitespace } from '../text/escape.js';
import { deviceChain, type ChainLink } from './device-chain.js';
import type { Builtin } from '../rules/builtin.js';

const INTERFACE_TYPES: Record<number, string> = { 1: 'audio', 3: 'hid', 5: 'physical', 6: 'media', 7: 'printer', 8: 'storage', 9: 'hub', 0x0e: 'video' };
const STORAGE_SUBTYPES: Record<number, string> = { 1: 'rbc', 2: 'atapi', 3: 'tape', 4: 'floppy', 6: 'scsi' };
const SCSI_TYPES: Record<number, string> = { 0: 'disk', 0xe: 'disk', 1: 'tape', 4: 'optical', 7: 'optical', 0xf: 'optical', 5: 'cd' };

/** udev's encode_devnode_name: safe characters and UTF-8 kept, everything else as \xNN. */
export function encodeName(text: string): string {
  let out = '';
  for (const c of text) {
    if (/[0-9A-Za-z#+\-.:=@_]/.test(c) || (c.codePointAt(0) as number) >= 0x80) out += c;
    else out += `\\x${(c.codePointAt(0) as number).toString(16).padStart(2, '0')}`;
  }
  return out;
}

function clean(text: string): string {
  return replaceChars(replaceWhitespace(text));
}

function hexNumber(text: string | undefined): number | undefined {
  return text === undefined || !/^[0-9a-fA-F]+$/.test(text.trim()) ? undefined : Number.parseInt(text.trim(), 16);
}

export const usbId: Builtin = {
  name: 'usb_id',
  summary: 'USB vendor, model, serial, type and interfaces of the USB device above the device',
  run(_argv, context) {
    const chain = deviceChain(context);
    let usbInterface: ChainLink | undefined;
    let usbDevice: ChainLink | undefined;
    let scsi: ChainLink | undefined;
    for (const link of chain) {
      if (link.subsystem === 'scsi' && link.devtype === 'scsi_device') scsi ??= link;
      if (link.subsystem !== 'usb') continue;
      if (link.devtype === 'usb_interface') usbInterface ??= link;
      if (link.devtype === 'usb_device') {
        usbDevice = link;
        break;
      }
    }
    if (usbDevice === undefined) return { failed: 'usb_id: no USB device above the device' };
    const dev = usbDevice.view;
    const p: Record<string, string> = {};
    let type: string | undefined;
    if (usbInterface !== undefined) {
      const iface = usbInterface.view;
      const ifClass = hexNumber(iface.attribute('bInterfaceClass'));
      type = ifClass === undefined ? undefined : (INTERFACE_TYPES[ifClass] ?? 'generic');
      if (ifClass === 8) type = STORAGE_SUBTYPES[hexNumber(iface.attribute('bInterfaceSubClass')) ?? -1] ?? 'generic';
      const number = iface.attribute('bInterfaceNumber');
      if (number !== undefined) p.ID_USB_INTERFACE_NUM = number.trim();
      const driver = iface.driver;
      if (driver !== undefined) p.ID_USB_DRIVER = driver;
    }
    let vendor = dev.attribute('manufacturer') ?? dev.attribute('idVendor') ?? '';
    let model = dev.attribute('product') ?? dev.attribute('idProduct') ?? '';
    let revision = dev.attribute('bcdDevice') ?? '';
    if (scsi !== undefined && (type === 'scsi' || type === 'rbc' || type === 'atapi')) {
      // Storage: the SCSI inquiry data names the medium better than the USB bridge does.
      vendor = scsi.view.attribute('vendor') ?? vendor;
      model = scsi.view.attribute('model') ?? model;
      revision = scsi.view.attribute('rev') ?? revision;
      type = SCSI_TYPES[Number(scsi.view.attribute('type') ?? -1)] ?? 'generic';
      const [, , target, lun] = scsi.name.split(':');
      if (target !== undefined && lun !== undefined) p.ID_INSTANCE = `${target}:${lun}`;
    }
    p.ID_VENDOR = clean(vendor);
    p.ID_VENDOR_ENC = encodeName(vendor);
    p.ID_VENDOR_ID = (dev.attribute('idVendor') ?? '').trim();
    p.ID_MODEL = clean(model);
    p.ID_MODEL_ENC = encodeName(model);
    p.ID_MODEL_ID = (dev.attribute('idProduct') ?? '').trim();
    p.ID_REVISION = clean(revision);
    const rawSerial = dev.attribute('serial');
    // As udev: a serial with control or non-ASCII bytes is not trusted as an identity.
    const serial = rawSerial !== undefined && /^[\x20-\x7e]*$/.test(rawSerial) ? clean(rawSerial) : '';
    p.ID_SERIAL = serial === '' ? `${p.ID_VENDOR}_${p.ID_MODEL}` : `${p.ID_VENDOR}_${p.ID_MODEL}_${serial}`;
    if (serial !== '') p.ID_SERIAL_SHORT = serial;
    if (type !== undefined) p.ID_TYPE = type;
    const interfaces = dev
      .entries()
      .filter((e) => e.startsWith(`${usbDevice.name}:`))
      .map((e) => ['bInterfaceClass', 'bInterfaceSubClass', 'bInterfaceProtocol'].map((a) => dev.attribute(`${e}/${a}`)?.trim() ?? '').join(''))
      .filter((code) => /^[0-9a-f]{6}$/i.test(code));
    if (interfaces.length > 0) p.ID_USB_INTERFACES = `:${[...new Set(interfaces)].join(':')}:`;
    p.ID_BUS = 'usb';
    // systemd 253 and later also set every identity as ID_USB_*, which newer rules use.
    for (const key of ['VENDOR', 'VENDOR_ENC', 'VENDOR_ID', 'MODEL', 'MODEL_ENC', 'MODEL_ID', 'REVISION', 'SERIAL', 'SERIAL_SHORT', 'TYPE', 'INSTANCE']) {
      const value = p[`ID_${key}`];
      if (value !== undefined) p[`ID_USB_${key}`] = value;
    }
    return { properties: p };
  },
};
