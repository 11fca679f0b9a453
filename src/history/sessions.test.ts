import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openHistoryDb } from './db.js';
import { DeviceIdentities } from './devices.js';
import { resolveDevice } from './query.js';
import { humanDuration, pairSessions, plugEvents, type PlugEvent } from './sessions.js';
import { HistoryWriter } from './writer.js';
import { createProperties, eventFromProperties, type Uevent } from '../uevent/event.js';
import { Sysfs } from '../uevent/sysfs.js';
import { loadUeventFixtures } from '../../test/helpers/fixtures.js';
import { buildFakeSysfs, type FakeSysfs } from '../../test/helpers/fake-sysfs.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

const plug = (id: number, action: string, port: string, at: number, source = 'kernel'): PlugEvent => ({
  id, action, devpath: `/devices/pci0000:00/0000:00:14.0/usb1/${port}`, source, at,
});

describe('pairing plugs and unplugs', () => {
  it('pairs add with remove, per port', () => {
    expect(pairSessions([plug(1, 'add', '1-1', 1000), plug(2, 'remove', '1-1', 5000), plug(3, 'add', '1-2', 9000)])).toEqual([
      { port: '1-1', pluggedAt: 1000, unpluggedAt: 5000, endMissed: false, presentAtStart: false },
      { port: '1-2', pluggedAt: 9000, unpluggedAt: null, endMissed: false, presentAtStart: false },
    ]);
  });

  it('continues a session across a daemon restart when coldplug finds the device in the same port', () => {
    expect(pairSessions([plug(1, 'add', '1-1', 1000), plug(2, 'add', '1-1', 3000, 'coldplug'), plug(3, 'remove', '1-1', 5000)])).toEqual([
      { port: '1-1', pluggedAt: 1000, unpluggedAt: 5000, endMissed: false, presentAtStart: false },
    ]);
  });

  it('marks the ends the history missed', () => {
    const sessions = pairSessions([
      plug(1, 'remove', '1-1', 1000), // plugged before the history began
      plug(2, 'add', '1-1', 2000),
      plug(3, 'add', '1-3', 4000, 'coldplug'), // moved while the daemon was down
    ]);
    expect(sessions).toEqual([
      { port: '1-1', pluggedAt: null, unpluggedAt: 1000, endMissed: false, presentAtStart: false },
      { port: '1-1', pluggedAt: 2000, unpluggedAt: null, endMissed: true, presentAtStart: false },
      { port: '1-3', pluggedAt: 4000, unpluggedAt: null, endMissed: false, presentAtStart: true },
    ]);
  });

  it('prints durations as people read them', () => {
    expect([45_000, 183_000, 7_440_000, 3 * 86_400_000 + 7_200_000].map(humanDuration)).toEqual(['45 s', '3 min 3 s', '2 h 4 min', '3 d 2 h']);
  });
});

describe('sessions of a real USB stick (usb-mass-storage fixture)', () => {
  const fixture = loadUeventFixtures().find((f) => f.scenario === 'usb-mass-storage')!;
  const OLD_PORT = '/usb1/1-1';
  const NEW_PORT = '/usb1/1-2';

  function toEvent(env: Record<string, string>, at: number, port: string, source: 'kernel' | 'coldplug' = 'kernel'): Uevent {
    const properties = createProperties();
    for (const [key, value] of Object.entries(env)) properties[key] = key === 'DEVPATH' ? value.replace(OLD_PORT, port) : value;
    return eventFromProperties(properties, at, source);
  }

  it('recognises the stick by serial in another port, across a restart, and pairs its sessions', () => {
    const sysfs: FakeSysfs = buildFakeSysfs(fixture.sysfs!);
    cleanups.push(() => sysfs.remove());
    const dir = mkdtempSync(join(tmpdir(), 'hotplugd-sessions-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const db = openHistoryDb(join(dir, 'h.db'));
    cleanups.push(() => db.close());
    const writer = new HistoryWriter(db);
    const reader = new Sysfs(sysfs.root);
    let identities = new DeviceIdentities((devpath, name) => reader.attribute(devpath, name));
    const usbDir = (port: string) => join(sysfs.root, `/devices/pci0000:00/0000:00:0b.0${port}`);
    const kernelEvents = fixture.events.filter((e) => e.layer === 'kernel' && e.env_in_source);
    const adds = kernelEvents.filter((e) => e.env.ACTION === 'add' || e.env.ACTION === 'bind');
    const removes = kernelEvents.filter((e) => e.env.ACTION === 'remove' || e.env.ACTION === 'unbind');
    let clock = Date.parse('2026-11-20T10:00:00Z');
    const record = (env: Record<string, string>, port: string, source: 'kernel' | 'coldplug' = 'kernel') => {
      const event = toEvent(env, (clock += 100), port, source);
      writer.recordEvent(event, { device: identities.of(event) });
    };

    for (const e of adds) record(e.env, OLD_PORT);
    clock += 180_000;
    rmSync(usbDir(OLD_PORT), { recursive: true }); // unplugged: sysfs is gone before the removes arrive
    for (const e of removes) record(e.env, OLD_PORT);
    clock += 60_000;
    // Plugged again into another port: the same stick's tree under 1-2.
    const replugged = buildFakeSysfs(Object.fromEntries(Object.entries(fixture.sysfs!).map(([p, v]) => [p.replace(OLD_PORT, NEW_PORT), v])));
    cleanups.push(() => replugged.remove());
    const replugReader = new Sysfs(replugged.root);
    identities = new DeviceIdentities((devpath, name) => replugReader.attribute(devpath, name));
    for (const e of adds) record(e.env, NEW_PORT);
    clock += 3_600_000;
    // The daemon restarts: a new resolver, and coldplug finds the stick where it was.
    identities = new DeviceIdentities((devpath, name) => replugReader.attribute(devpath, name));
    record(adds[0]!.env, NEW_PORT, 'coldplug');
    clock += 120_000;
    for (const e of removes) record(e.env, NEW_PORT);
    writer.flush();

    const [stick, ...others] = resolveDevice(db, '1e3d:2093');
    expect(others).toEqual([]);
    expect(stick).toMatchObject({ key: 'usb:1e3d:2093:CCCB1104231104350952973414', serial: 'CCCB1104231104350952973414', vendor: 'Generic', model: 'Flash Disk' });
    expect(resolveDevice(db, 'sdb').map((d) => d.id)).toEqual([stick!.id]);
    expect(resolveDevice(db, '/dev/sdb1').map((d) => d.id)).toEqual([stick!.id]);
    // Every event below the stick belongs to it; the virtual bdi device is a device of its own.
    const owners = db.prepare('SELECT devpath, device_id FROM events').all() as { devpath: string; device_id: number }[];
    for (const { devpath, device_id } of owners) expect(device_id === stick!.id).toBe(!devpath.startsWith('/devices/virtual/'));

    const sessions = pairSessions(plugEvents(db, stick!));
    expect(sessions.map((s) => ({ port: s.port, length: s.unpluggedAt! - s.pluggedAt! }))).toEqual([
      { port: '1-1', length: 180_000 + 100 * (adds.length + removes.length - 1) },
      { port: '1-2', length: 3_600_000 + 120_000 + 100 * (adds.length + removes.length) },
    ]);
    expect(sessions.every((s) => !s.endMissed && !s.presentAtStart)).toBe(true);
  });
});
