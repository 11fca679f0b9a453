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

/** udev's udev_replace_whitespace into a 64-byte buffer, then udev_replace_chars. */
function clean(text: string): string {
  return replaceChars(replaceWhitespace(text).slice(0, 63));
}

/** A vendor or model string as udev exports it: cleaned (ID_VENDOR) and encoded (ID_VENDOR_ENC). */
function named(raw: string): { text: string; enc: string } {
  return { text: clean(raw), enc: encodeName(raw) };
}

function hexNumber(text: string | undefined): number | undefined {
  return text === undefined || !/^[0-9a-fA-F]+$/.test(text.trim()) ? undefined : Number.parseInt(text.trim(), 16);
}

const USB_DT_INTERFACE = 4;
const INTERFACE_DESCRIPTOR_SIZE = 9;

/**
 * Every interface class/subclass/protocol the device's descriptors list (all configurations),
 * each once, as udev's dev_if_packed_info: `:080650:` ; undefined without descriptors.
 */
export function packedInterfaces(descriptors: Buffer | undefined): string | undefined {
  if (descriptors === undefined || descriptors.length < 18) return undefined;
  const seen: string[] = [];
  let pos = 0;
  while (pos + INTERFACE_DESCRIPTOR_SIZE < descriptors.length) {
    const length = descriptors[pos] as number;
    if (length < 3) break;
    if (length > descriptors.length - INTERFACE_DESCRIPTOR_SIZE) return undefined; // corrupt
    const at = pos;
    pos += length;
    if (descriptors[at + 1] !== USB_DT_INTERFACE) continue;
    const code = [5, 6, 7].map((i) => (descriptors[at + i] as number).toString(16).padStart(2, '0')).join('');
    if (!seen.includes(code)) seen.push(code);
  }
  return seen.length === 0 ? undefined : `:${seen.join(':')}:`;
}

/** The serial number as an identity: refused (as udev) when it has control bytes, bytes past 0x7f or a comma. */
function trustedSerial(raw: string | undefined): string {
  if (raw === undefined || !/^[\x20-\x7f]*$/.test(raw) || raw.includes(',')) return '';
  return clean(raw);
}

export const usbId: Builtin = {
  name: 'usb_id',
  summary: 'USB vendor, model, serial, type and interfaces of the USB device above the device',
  run(_argv, context) {
    const chain = deviceChain(context);
    let usbInterface: ChainLink | undefined;
    let usbDevice: ChainLink | undefined;
    // Called for a usb_device itself: its own identity, without interface or type.
    if (chain[0]?.subsystem === 'usb' && chain[0].devtype === 'usb_device') usbDevice = chain[0];
    else {
      usbInterface = chain.find((link) => link.subsystem === 'usb' && link.devtype === 'usb_interface');
      if (usbInterface === undefined) return { failed: 'usb_id: no USB interface above the device' };
      usbDevice = chain.slice(chain.indexOf(usbInterface) + 1).find((link) => link.subsystem === 'usb' && link.devtype === 'usb_device');
      if (usbDevice === undefined) return { failed: 'usb_id: no USB device above the interface' };
    }
    const dev = usbDevice.view;
    let type = '';
    let protocol = 0;
    let vendor: { text: string; enc: string } | undefined;
    let model: { text: string; enc: string } | undefined;
    let revision = '';
    let instance = '';
    if (usbInterface !== undefined) {
      const ifClass = hexNumber(usbInterface.view.attribute('bInterfaceClass'));
      if (ifClass === undefined) return { failed: 'usb_id: the interface has no bInterfaceClass' };
      if (ifClass === 8) {
        const sub = usbInterface.view.attribute('bInterfaceSubClass');
        if (sub !== undefined) {
          // udev parses it as a decimal number ("06" is 6).
          protocol = /^\s*[0-9]+\s*$/.test(sub) ? Number.parseInt(sub, 10) : 0;
          type = STORAGE_SUBTYPES[protocol] ?? 'generic';
        }
      } else type = INTERFACE_TYPES[ifClass] ?? 'generic';
    }
    // Mass storage (SCSI or ATAPI): the SCSI inquiry names the medium, and the target:lun
    // tells apart the units of a bridge that gives every one the same identity.
    const scsi = protocol === 6 || protocol === 2 ? chain.find((link) => link.subsystem === 'scsi' && link.devtype === 'scsi_device') : undefined;
    const numbers = scsi ? /^(\d+):(\d+):(\d+):(\d+)$/.exec(scsi.name) : null;
    if (scsi && numbers) {
      const attr = (name: string) => scsi.view.attribute(name);
      const [scsiVendor, scsiModel, scsiType, scsiRev] = [attr('vendor'), attr('model'), attr('type'), attr('rev')];
      if (scsiVendor !== undefined) vendor = named(scsiVendor);
      if (scsiVendor !== undefined && scsiModel !== undefined) model = named(scsiModel);
      if (vendor && model && scsiType !== undefined) {
        type = SCSI_TYPES[Number(scsiType)] ?? 'generic';
        if (scsiRev !== undefined) {
          revision = clean(scsiRev);
          instance = `${Number(numbers[3])}:${Number(numbers[4])}`;
        }
      }
    }
    const vendorId = dev.attribute('idVendor');
    const productId = dev.attribute('idProduct');
    if (vendorId === undefined || productId === undefined) return { failed: 'usb_id: the USB device has no idVendor or idProduct' };
    if (!vendor || vendor.text === '') {
      vendor = named(dev.attribute('manufacturer') ?? vendorId);
    }
    if (!model || model.text === '') {
      model = named(dev.attribute('product') ?? productId);
    }
    if (revision === '') revision = clean(dev.attribute('bcdDevice') ?? '');
    const serialShort = trustedSerial(dev.attribute('serial'));
    const serial = `${vendor.text}_${model.text}${serialShort ? `_${serialShort}` : ''}${instance ? `-${instance}` : ''}`;
    const id: Record<string, string> = {
      MODEL: model.text, MODEL_ENC: model.enc, MODEL_ID: productId, SERIAL: serial,
      ...(serialShort ? { SERIAL_SHORT: serialShort } : {}),
      VENDOR: vendor.text, VENDOR_ENC: vendor.enc, VENDOR_ID: vendorId, REVISION: revision,
      ...(type ? { TYPE: type } : {}), ...(instance ? { INSTANCE: instance } : {}),
    };
    const p: Record<string, string> = {};
    // As udev: a device whose bus is already known (ID_BUS set by earlier rules) gets only the ID_USB_ names.
    if (context.properties.ID_BUS === undefined) {
      p.ID_BUS = 'usb';
      for (const [key, value] of Object.entries(id)) p[`ID_${key}`] = value;
    }
    for (const [key, value] of Object.entries(id)) p[`ID_USB_${key}`] = value;
    const interfaces = packedInterfaces(dev.binaryAttribute('descriptors'));
    if (interfaces !== undefined) p.ID_USB_INTERFACES = interfaces;
    const ifnum = usbInterface?.view.attribute('bInterfaceNumber');
    if (ifnum !== undefined) p.ID_USB_INTERFACE_NUM = ifnum;
    const driver = usbInterface?.view.driver;
    if (driver !== undefined) p.ID_USB_DRIVER = driver;
    return { properties: p };
  },
};
