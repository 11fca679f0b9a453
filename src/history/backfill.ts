// Schema 4 gives every event the physical device it belongs to. Rows recorded before then
// get one from what they carry: sysfs attributes (serials) were not recorded, so an old
// USB device is known by vendor:product (from the kernel's PRODUCT) and its port.
import type Database from 'better-sqlite3';
import { usbDevicePath, usbIdentity, type DeviceIdentity } from './devices.js';

const PAGE = 5000;

function identityOf(devpath: string, subsystem: string, products: Map<string, string>): DeviceIdentity {
  const usbPath = usbDevicePath(devpath);
  if (usbPath === undefined) return { key: `${subsystem}:${devpath}`, subsystem, devpath };
  return usbIdentity(usbPath, () => undefined, products.get(usbPath));
}

export function backfillDevices(db: Database.Database): void {
  const products = new Map<string, string>();
  const productRows = db.prepare(
    `SELECT devpath, json_extract(properties, '$.PRODUCT') AS product FROM events
     WHERE devtype IN ('usb_device', 'usb_interface') AND json_extract(properties, '$.PRODUCT') IS NOT NULL ORDER BY id`,
  );
  for (const row of productRows.all() as { devpath: string; product: string }[]) {
    const usbPath = usbDevicePath(row.devpath);
    if (usbPath !== undefined && !products.has(usbPath)) products.set(usbPath, row.product);
  }
  const page = db.prepare('SELECT id, devpath, devname, subsystem, received_at FROM events WHERE id > ? ORDER BY id LIMIT ?');
  const insertName = db.prepare('INSERT OR IGNORE INTO device_names (name, device_id) VALUES (?, ?)');
  const setDevice = db.prepare('UPDATE events SET device_id = ? WHERE id = ?');
  const insert = db.prepare(
    `INSERT INTO devices (key, subsystem, devpath, vendor_id, product_id, serial, vendor, model, first_seen, last_seen)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const seen = db.prepare('UPDATE devices SET last_seen = ?, devpath = ? WHERE id = ?');
  const devices = new Map<string, { id: number; last: number; devpath: string }>();
  for (let after = 0; ; ) {
    const rows = page.all(after, PAGE) as { id: number; devpath: string; devname: string | null; subsystem: string; received_at: number }[];
    if (rows.length === 0) break;
    for (const row of rows) {
      const identity = identityOf(row.devpath, row.subsystem, products);
      let device = devices.get(identity.key);
      if (!device) {
        const i = identity;
        const id = Number(insert.run(i.key, i.subsystem, i.devpath, i.vendorId ?? null, i.productId ?? null, null, null, null, row.received_at, row.received_at).lastInsertRowid);
        devices.set(identity.key, (device = { id, last: row.received_at, devpath: identity.devpath }));
      }
      device.last = Math.max(device.last, row.received_at);
      device.devpath = identity.devpath;
      setDevice.run(device.id, row.id);
      insertName.run(row.devpath.slice(row.devpath.lastIndexOf('/') + 1), device.id);
      if (row.devname !== null) insertName.run(row.devname, device.id);
    }
    after = rows[rows.length - 1]!.id;
  }
  for (const device of devices.values()) seen.run(device.last, device.devpath, device.id);
}
