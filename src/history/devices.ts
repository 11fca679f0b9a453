// Which physical device an event belongs to. A USB device is known by vendor:product:serial,
// so the same stick is recognised in another port; every event below it (interfaces, ttys,
// disks) belongs to it. Other devices are known by subsystem and devpath.
import type { Uevent } from '../uevent/event.js';

export interface DeviceIdentity {
  /** `usb:VVVV:PPPP:SERIAL`, `usb:VVVV:PPPP@PORT` (no serial), or `SUBSYSTEM:DEVPATH`. */
  key: string;
  subsystem: string;
  /** The device's own devpath (for USB, the usb_device's, not the interface's). */
  devpath: string;
  vendorId?: string | undefined;
  productId?: string | undefined;
  serial?: string | undefined;
  /** Manufacturer and product strings, as the device reports them (untrusted). */
  vendor?: string | undefined;
  model?: string | undefined;
}

// usb1 is a root hub; 1-1, 1-1.2 are devices behind ports; 1-1:1.0 is an interface.
const ROOT_HUB = /^usb\d+$/;
const PORT_DEVICE = /^\d+-\d+(?:\.\d+)*$/;
const ROOT_HUB_INTERFACE = /^\d+-0:/;

/** The devpath of the USB device an event's devpath is at or below, if any. */
export function usbDevicePath(devpath: string): string | undefined {
  // Every USB device sits below its root hub (usbN): other devices need no closer look,
  // and an i2c client named like a port (0-0050) is not taken for one.
  if (!devpath.includes('/usb')) return undefined;
  const parts = devpath.split('/');
  // From the root hub down through the devices behind its ports, to the first thing that is
  // not one (an interface): a USB network interface named usb0 below is not a root hub.
  for (let i = 1; i < parts.length; i++) {
    if (!ROOT_HUB.test(parts[i]!)) continue;
    let end = i;
    while (end + 1 < parts.length && PORT_DEVICE.test(parts[end + 1]!)) end++;
    if (end > i || i === parts.length - 1 || ROOT_HUB_INTERFACE.test(parts[i + 1]!)) return parts.slice(0, end + 1).join('/');
  }
  return undefined;
}

/** The port a USB device sits on (`1-1.2`), from its devpath. */
export function usbPort(devpath: string): string {
  return devpath.slice(devpath.lastIndexOf('/') + 1);
}

// Serials are chosen by whoever built the device: keep keys printable and bounded.
function clean(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  // eslint-disable-next-line no-control-regex
  const text = value.replace(/[\x00-\x1f\x7f]/g, '').trim().slice(0, 128);
  return text === '' ? undefined : text;
}

function hex4(value: string | undefined): string | undefined {
  if (value === undefined || !/^[0-9a-fA-F]{1,4}$/.test(value)) return undefined;
  return value.toLowerCase().padStart(4, '0');
}

/** Reads a sysfs attribute of a device; undefined when it (or the device) is gone. */
export type AttributeReader = (devpath: string, name: string) => string | undefined;

/** The identity of a USB device from its attributes, or from the kernel's PRODUCT when they are gone. */
export function usbIdentity(devpath: string, read: AttributeReader, product?: string): DeviceIdentity {
  const [productVendor, productModel] = (product ?? '').split('/');
  const vendorId = hex4(read(devpath, 'idVendor')) ?? hex4(productVendor) ?? '0000';
  const productId = hex4(read(devpath, 'idProduct')) ?? hex4(productModel) ?? '0000';
  const serial = clean(read(devpath, 'serial'));
  return {
    key: serial ? `usb:${vendorId}:${productId}:${serial}` : `usb:${vendorId}:${productId}@${usbPort(devpath)}`,
    subsystem: 'usb',
    devpath,
    vendorId,
    productId,
    serial,
    vendor: clean(read(devpath, 'manufacturer')),
    model: clean(read(devpath, 'product')),
  };
}

/**
 * Resolves events to identities, remembering USB devices while they are plugged: on
 * `remove` their attributes are already gone from sysfs.
 */
export class DeviceIdentities {
  #usb = new Map<string, DeviceIdentity>();
  #read: AttributeReader;
  #recorded: (devpath: string) => DeviceIdentity | undefined;

  constructor(read: AttributeReader, recorded: (devpath: string) => DeviceIdentity | undefined = () => undefined) {
    this.#read = read;
    this.#recorded = recorded;
  }

  of(event: Uevent): DeviceIdentity {
    const usbPath = usbDevicePath(event.devpath);
    if (usbPath === undefined) return { key: `${event.subsystem}:${event.devpath}`, subsystem: event.subsystem, devpath: event.devpath };
    let identity = this.#usb.get(usbPath);
    if (identity === undefined) {
      const product = usbPath === event.devpath || event.devtype === 'usb_interface' ? event.properties.PRODUCT : undefined;
      const present = this.#read(usbPath, 'idVendor') !== undefined;
      identity = (!present && this.#recorded(usbPath)) || usbIdentity(usbPath, this.#read, product);
      if (present) this.#usb.set(usbPath, identity);
    }
    if (usbPath === event.devpath && (event.action === 'remove' || event.action === 'move')) this.#usb.delete(usbPath);
    return identity;
  }
}

/** A device key's parts (the inverse of the keys made above): USB ids and serial, or the subsystem and devpath. */
export function parseDeviceKey(key: string): { subsystem: string; usb?: { vendorId: string; productId: string; serial: string | undefined } | undefined; devpath?: string | undefined } {
  const usb = /^usb:([0-9a-f]{4}):([0-9a-f]{4})(?::(.*)|@.*)$/.exec(key);
  if (usb) return { subsystem: 'usb', usb: { vendorId: usb[1] as string, productId: usb[2] as string, serial: usb[3] } };
  const colon = key.indexOf(':');
  return { subsystem: key.slice(0, colon), devpath: key.slice(colon + 1) };
}
