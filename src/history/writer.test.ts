import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { openHistoryDb } from './db.js';
import { listEvents, listIncidents } from './records.js';
import { HistoryWriter } from './writer.js';
import { DeviceIdentities, usbDevicePath } from './devices.js';
import { createProperties, eventFromProperties, type Uevent } from '../uevent/event.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hotplugd-writer-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function event(action: string, devpath: string, subsystem: string, extra: Record<string, string> = {}, at = 0): Uevent {
  const properties = createProperties();
  Object.assign(properties, { ACTION: action, DEVPATH: devpath, SUBSYSTEM: subsystem, ...extra });
  return eventFromProperties(properties, at, 'kernel');
}

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('history writer counters', () => {
  it('count events apart from the rows of every kind (actions, incidents)', () => {
    const db = openHistoryDb(join(dir, 'h.db'));
    const writer = new HistoryWriter(db, { flushDelayMs: 10_000 });
    for (let i = 0; i < 3; i++) {
      const id = writer.recordEvent(event('add', `/devices/virtual/tty/t${i}`, 'tty'));
      writer.recordAction(id, { kind: 'program', target: '/bin/true', rule: 'r (f:1:1)', ok: true, error: null, durationMs: 1 });
      writer.recordAction(id, { kind: 'program', target: '/bin/true', rule: 'r (f:1:1)', ok: true, error: null, durationMs: 1 });
    }
    writer.flush();
    expect(writer.eventsCommitted).toBe(3);
    expect(writer.rowsCommitted).toBe(9);
    db.close();
  });
});

describe('history writer when commits fail', () => {
  it('keeps rows while another process holds the write lock, and commits them when it lets go', async () => {
    const path = join(dir, 'h.db');
    const db = openHistoryDb(path);
    db.pragma('busy_timeout = 0');
    const errors: string[] = [];
    let recovered = 0;
    const writer = new HistoryWriter(db, { onError: (error) => errors.push(error.message), onRecovered: () => recovered++ });
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    writer.recordEvent(event('add', '/devices/virtual/net/a', 'net'));
    expect(writer.flush()).toBe(false);
    expect(writer.failing).toBe(true);
    expect(errors[0]).toMatch(/locked|busy/i);
    // Events keep coming while the lock is held.
    writer.recordEvent(event('remove', '/devices/virtual/net/a', 'net'));
    expect(writer.pending).toBe(2);
    other.exec('COMMIT');
    other.close();
    await wait(400); // the first retry comes after 250 ms
    expect(writer.failing).toBe(false);
    expect(recovered).toBe(1);
    expect(listEvents(db).map((e) => e.action)).toEqual(['add', 'remove']);
    expect(writer.lost).toBe(0);
    db.close();
  });

  it('gives up the oldest rows beyond maxPending and records the loss once recording works again', () => {
    const path = join(dir, 'h.db');
    const db = openHistoryDb(path);
    db.pragma('busy_timeout = 0');
    const told: unknown[] = [];
    const writer = new HistoryWriter(db, { maxPending: 100, batchSize: 1_000_000, onOwnIncident: (incident) => told.push(incident) });
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    writer.recordEvent(event('add', '/devices/virtual/net/a', 'net'));
    writer.flush();
    for (let i = 0; i < 200; i++) writer.recordEvent(event('change', '/devices/virtual/net/a', 'net'));
    expect(writer.lost).toBeGreaterThan(0);
    expect(writer.pending).toBeLessThanOrEqual(100);
    other.exec('COMMIT');
    other.close();
    expect(writer.flush()).toBe(true);
    const ids = listEvents(db).map((e) => e.id);
    expect(ids).toHaveLength(201 - writer.lost);
    const [lost] = listIncidents(db);
    expect(lost).toMatchObject({ kind: 'history-lost', detail: { rows: writer.lost, fromId: 1, toId: writer.lost } });
    // Told once, after the commit that holds it (subscribers hear of it as of any incident).
    expect(told).toEqual([expect.objectContaining({ kind: 'history-lost', detail: lost!.detail })]);
    expect(writer.flush()).toBe(true);
    expect(told).toHaveLength(1);
    expect(ids[0]).toBe(writer.lost + 1);
    db.close();
  });
});

describe('device identities', () => {
  const stick = '/devices/pci0000:00/0000:00:14.0/usb1/1-1';
  const attributes = new Map<string, string>();
  const read = (devpath: string, name: string) => attributes.get(`${devpath}/${name}`);
  function plug(devpath: string): void {
    attributes.set(`${devpath}/idVendor`, '0781');
    attributes.set(`${devpath}/idProduct`, '5583');
    attributes.set(`${devpath}/serial`, '4C530001\x1b[31m');
    attributes.set(`${devpath}/product`, 'Cruzer Fit');
  }
  function unplug(devpath: string): void {
    for (const key of [...attributes.keys()]) if (key.startsWith(`${devpath}/`)) attributes.delete(key);
  }

  it('finds the USB device an event is under', () => {
    expect(usbDevicePath(`${stick}/1-1:1.0/host2/target2:0:0/2:0:0:0/block/sdb/sdb1`)).toBe(stick);
    expect(usbDevicePath('/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1.4/1-1.4:1.0')).toBe('/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1.4');
    expect(usbDevicePath('/devices/pci0000:00/0000:00:14.0/usb1')).toBe('/devices/pci0000:00/0000:00:14.0/usb1');
    expect(usbDevicePath('/devices/virtual/net/lo')).toBeUndefined();
    expect(usbDevicePath('/devices/platform/i2c_designware.0/i2c-0/0-0050')).toBeUndefined();
    // A USB network interface named usb0 (cdc_subset's name) is no root hub.
    expect(usbDevicePath('/devices/pci0000:00/0000:00:06.0/usb1/1-3/1-3:1.1/net/usb0')).toBe('/devices/pci0000:00/0000:00:06.0/usb1/1-3');
    expect(usbDevicePath('/devices/pci0000:00/0000:00:06.0/usb1/1-0:1.0/usb1-port1')).toBe('/devices/pci0000:00/0000:00:06.0/usb1');
    expect(usbDevicePath('/devices/platform/soc/usb0/usb1/1-1')).toBe('/devices/platform/soc/usb0/usb1/1-1');
  });

  it('knows a stick by vendor:product:serial in any port, even on remove after its attributes are gone', () => {
    const identities = new DeviceIdentities(read);
    plug(stick);
    const first = identities.of(event('add', stick, 'usb', { DEVTYPE: 'usb_device' }));
    expect(first).toMatchObject({ key: 'usb:0781:5583:4C530001[31m', vendorId: '0781', productId: '5583', model: 'Cruzer Fit' });
    expect(identities.of(event('add', `${stick}/1-1:1.0/host2/target2:0:0/2:0:0:0/block/sdb`, 'block')).key).toBe(first.key);
    unplug(stick);
    expect(identities.of(event('remove', `${stick}/1-1:1.0/host2/target2:0:0/2:0:0:0/block/sdb`, 'block')).key).toBe(first.key);
    expect(identities.of(event('remove', stick, 'usb', { DEVTYPE: 'usb_device' })).key).toBe(first.key);
    const otherPort = '/devices/pci0000:00/0000:00:14.0/usb1/1-2';
    plug(otherPort);
    expect(identities.of(event('add', otherPort, 'usb', { DEVTYPE: 'usb_device' })).key).toBe(first.key);
    expect(identities.of(event('add', '/devices/virtual/net/lo', 'net')).key).toBe('net:/devices/virtual/net/lo');
  });

  it('records one devices row per physical device, with first and last seen', () => {
    const db = openHistoryDb(join(dir, 'h.db'));
    const writer = new HistoryWriter(db);
    const identities = new DeviceIdentities(read);
    plug(stick);
    writer.recordEvent(event('add', stick, 'usb', { DEVTYPE: 'usb_device' }, 1000), { device: identities.of(event('add', stick, 'usb', { DEVTYPE: 'usb_device' })) });
    writer.flush();
    writer.recordEvent(event('add', `${stick}/1-1:1.0`, 'usb', {}, 2000), { device: identities.of(event('add', `${stick}/1-1:1.0`, 'usb')) });
    writer.recordEvent(event('add', '/devices/virtual/net/lo', 'net', {}, 3000), { device: identities.of(event('add', '/devices/virtual/net/lo', 'net')) });
    writer.flush();
    expect(db.prepare('SELECT key, serial, first_seen, last_seen FROM devices ORDER BY id').all()).toEqual([
      { key: 'usb:0781:5583:4C530001[31m', serial: '4C530001[31m', first_seen: 1000, last_seen: 2000 },
      { key: 'net:/devices/virtual/net/lo', serial: null, first_seen: 3000, last_seen: 3000 },
    ]);
    expect(db.prepare('SELECT device_id FROM events ORDER BY id').all()).toEqual([{ device_id: 1 }, { device_id: 1 }, { device_id: 2 }]);
    db.close();
  });
});

describe('properties kept in columns', () => {
  it('are stored once, in their columns, and read back whole, in the kernel\'s order', async () => {
    const { queryEvents } = await import('./query.js');
    const db = openHistoryDb(join(dir, 'h.db'));
    const writer = new HistoryWriter(db, { flushDelayMs: 10_000 });
    const kernel = event('change', '/devices/virtual/net/lo', 'net', { INTERFACE: 'lo', IFINDEX: '1', SEQNUM: '4711' });
    const odd = event('add', '/devices/virtual/tty/t0', 'tty', { SEQNUM: '0042' }); // not as its column says: kept
    const relabelled = { ...event('add', '/devices/virtual/tty/t1', 'tty'), action: 'change' }; // ACTION differs from the event's
    const link = event('link-up', '/devices/virtual/net/lo', 'net', { INTERFACE: 'lo', CARRIER: '1' });
    for (const e of [kernel, odd, relabelled, link]) writer.recordEvent(e);
    writer.flush();
    // A row written before schema 7 holds every property.
    db.prepare(`INSERT INTO events (seqnum, action, devpath, subsystem, source, received_at, properties)
      VALUES (9, 'add', '/devices/virtual/tty/t2', 'tty', 'kernel', 0, '{"ACTION":"add","DEVPATH":"/devices/virtual/tty/t2","SUBSYSTEM":"tty","SEQNUM":"9"}')`).run();

    const stored = db.prepare('SELECT properties FROM events ORDER BY id').all() as { properties: string }[];
    expect(JSON.parse(stored[0]!.properties)).toEqual({ INTERFACE: 'lo', IFINDEX: '1' });
    expect(JSON.parse(stored[1]!.properties)).toEqual({ SEQNUM: '0042' });
    expect(JSON.parse(stored[2]!.properties)).toHaveProperty('ACTION', 'add');

    const read = listEvents(db);
    for (const [i, e] of [kernel, odd, relabelled, link].entries()) {
      expect(Object.entries(read[i]!.properties)).toEqual(Object.entries(e.properties));
    }
    expect(read[4]!.properties).toEqual({ ACTION: 'add', DEVPATH: '/devices/virtual/tty/t2', SUBSYSTEM: 'tty', SEQNUM: '9' });
    // Filters on those properties read the columns.
    const ids = (key: string, glob: string) => [...queryEvents(db, { properties: [{ key, glob }] })].map((r) => r.id);
    expect(ids('ACTION', 'change')).toEqual([read[0]!.id]); // the relabelled row's property says add
    expect(ids('SEQNUM', '47*')).toEqual([read[0]!.id]);
    expect(ids('DEVPATH', '*/t2')).toEqual([read[4]!.id]);
    db.close();
  });
});
