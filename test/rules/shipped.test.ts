// The shipped rules through `hotplugd test --json`, on fake sysfs trees built from real
// USB devices (a CH340 serial adapter, a USB stick), compared with golden outputs.
// UPDATE_GOLDEN=1 rewrites the golden files after a deliberate change.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFakeSysfs, type FakeSysfs } from '../helpers/fake-sysfs.js';
import { loadUeventFixtures } from '../helpers/fixtures.js';
import { CLI, makeTempDir } from '../helpers/netns.js';

const REPO = join(import.meta.dirname, '..', '..');
const GOLDEN = join(import.meta.dirname, '..', 'golden');
const SERIAL_USB = '/devices/pci0000:00/0000:00:08.1/0000:04:00.3/usb1/1-2/1-2.2';
const TTY = `${SERIAL_USB}/1-2.2:1.0/ttyUSB0/tty/ttyUSB0`;
const STICK_SCSI = '/devices/pci0000:00/0000:00:0b.0/usb1/1-1/1-1:1.0/host3/target3:0:0/3:0:0:0';
const DISK = `${STICK_SCSI}/block/sdb`;

let serial: FakeSysfs;
let stick: FakeSysfs;
const temp = makeTempDir('shipped');

function fixture(scenario: string) {
  const found = loadUeventFixtures().find((f) => f.scenario === scenario);
  if (!found?.sysfs) throw new Error(`fixture ${scenario} has no sysfs tree`);
  return found;
}

beforeAll(() => {
  serial = buildFakeSysfs(fixture('usb-serial-ch340').sysfs!);
  // What the kernel puts in these uevent files (the fixture records attributes only).
  writeFileSync(join(serial.root, TTY, 'uevent'), 'MAJOR=188\nMINOR=0\nDEVNAME=ttyUSB0\n');
  writeFileSync(join(serial.root, SERIAL_USB, 'uevent'), 'DEVTYPE=usb_device\nPRODUCT=1a86/7523/8134\n');
  const storage = fixture('usb-mass-storage');
  const tree = Object.fromEntries(Object.entries(storage.sysfs!).filter(([devpath]) => devpath.includes('0000:00:0b.0') || devpath === '/devices/pci0000:00'));
  stick = buildFakeSysfs(tree);
  // The partition is not in the fixture's attribute walk: add it as the kernel lays it out.
  const partition = join(stick.root, DISK, 'sdb1');
  mkdirSync(partition);
  writeFileSync(join(partition, 'uevent'), 'MAJOR=8\nMINOR=17\nDEVNAME=sdb1\nDEVTYPE=partition\nPARTN=1\n');
  symlinkSync(relative(partition, join(stick.root, 'bus/block')), join(partition, 'subsystem'));
});
afterAll(() => {
  serial?.remove();
  stick?.remove();
  temp.remove();
});

function hotplugdTest(args: string[]): Record<string, unknown> {
  const out = execFileSync(process.execPath, [CLI, 'test', '--rules-dir', 'rules.d', '--json', ...args], { cwd: REPO, encoding: 'utf8' });
  return JSON.parse(out) as Record<string, unknown>;
}

function expectGolden(name: string, actual: unknown): void {
  const path = join(GOLDEN, name);
  const text = `${JSON.stringify(actual, null, 2)}\n`;
  if (process.env.UPDATE_GOLDEN === '1') writeFileSync(path, text);
  expect(text).toBe(readFileSync(path, 'utf8'));
}

function recordedEvent(scenario: string, action: string, devpath: string): string {
  const event = fixture(scenario).events.find((e) => e.action === action && e.devpath === devpath && e.layer === 'kernel');
  if (!event) throw new Error(`no ${action} ${devpath} in ${scenario}`);
  const file = join(temp.path, `${action}-${devpath.split('/').pop()}.json`);
  writeFileSync(file, JSON.stringify({ properties: event.env }));
  return file;
}

describe('shipped rules', () => {
  it('load without errors or warnings', () => {
    const result = spawnSync(process.execPath, [CLI, 'rules', 'check', 'rules.d'], { cwd: REPO, encoding: 'utf8' });
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^\d+ files, \d+ rules loaded: 0 errors, 0 warnings\n$/);
    expect(result.status).toBe(0);
  });

  it('give a USB serial adapter by-id and by-path links and the dialout group', () => {
    const result = hotplugdTest(['--sysfs', serial.root, TTY]);
    expect(result).toMatchObject({
      devnode: '/dev/ttyUSB0',
      symlinks: ['/dev/serial/by-id/usb-1a86_7523-if00-port0', '/dev/serial/by-path/usb-1-2.2:1.0-port0'],
      group: { name: 'dialout' },
      mode: '0660',
    });
    expectGolden('ch340-tty-add.json', result);
  });

  it('use the adapter manufacturer, product and serial when it has them (sanitised in links)', () => {
    const usb = join(serial.root, SERIAL_USB);
    writeFileSync(join(usb, 'manufacturer'), 'QinHeng Electronics\n');
    writeFileSync(join(usb, 'product'), 'USB Serial / ../x\n');
    writeFileSync(join(usb, 'serial'), '0001\n');
    try {
      const result = hotplugdTest(['--sysfs', serial.root, TTY]);
      expect(result.symlinks).toEqual([
        '/dev/serial/by-id/usb-QinHeng_Electronics_USB_Serial___.._x_0001-if00-port0',
        '/dev/serial/by-path/usb-1-2.2:1.0-port0',
      ]);
      expect(result.properties).toMatchObject({ ID_VENDOR: 'QinHeng Electronics', ID_MODEL: 'USB Serial / ../x', ID_SERIAL_SHORT: '0001' });
    } finally {
      for (const name of ['manufacturer', 'product', 'serial']) writeFileSync(join(usb, name), '');
    }
  });

  it('give a USB stick and its partition by-id links, from recorded kernel events', () => {
    const disk = hotplugdTest(['--sysfs', stick.root, '--event', recordedEvent('usb-mass-storage', 'add', DISK)]);
    expect(disk.symlinks).toEqual(['/dev/disk/by-id/usb-Generic_Flash_Disk_CCCB1104231104350952973414']);
    expectGolden('usb-stick-disk-add.json', disk);
    const partition = hotplugdTest(['--sysfs', stick.root, '--event', recordedEvent('usb-mass-storage', 'add', `${DISK}/sdb1`)]);
    expect(partition.symlinks).toEqual(['/dev/disk/by-id/usb-Generic_Flash_Disk_CCCB1104231104350952973414-part1']);
    expectGolden('usb-stick-partition-add.json', partition);
  });

  it('load a module for a MODALIAS, and leave the opt-in hooks off', () => {
    const file = join(temp.path, 'modalias.env');
    writeFileSync(file, `ACTION=add\nDEVPATH=${DISK}\nSUBSYSTEM=block\nDEVTYPE=disk\nMODALIAS=usb:v1E3Dp2093d0100dc00dsc00dp00ic08isc06ip50in00\n`);
    const result = hotplugdTest(['--sysfs', stick.root, '--event', file]);
    expect(result.modules).toEqual([{ alias: 'usb:v1E3Dp2093d0100dc00dsc00dp00ic08isc06ip50in00', rule: expect.stringContaining('load-module') }]);
    expect(result.run).toEqual([]);
    const trace = result.trace as { rule: string; failed_key: string | null }[];
    expect(trace.find((t) => t.rule === 'usb-storage-hook')?.failed_key).toBe('exists /usr/local/lib/hotplugd/usb-storage-added');
  });
});

describe('hotplugd test', () => {
  it('prints a readable trace and plan without --json', () => {
    const out = execFileSync(process.execPath, [CLI, 'test', '--rules-dir', 'rules.d', '--sysfs', serial.root, TTY], { cwd: REPO, encoding: 'utf8' });
    expect(out).toContain('match  serial-by-id-port  rules.d/60-serial.yaml:');
    expect(out).toMatch(/no {5}serial-by-id {2}rules\.d\/60-serial\.yaml:\d+:\d+ {2}\(failed: env\.ID_USB_SERIAL_PORT\)/);
    expect(out).toContain('  group     dialout (20)');
  });

  it('accepts a path under the sysfs root, links included', () => {
    mkdirSync(join(serial.root, 'class', 'tty'), { recursive: true });
    symlinkSync(join(serial.root, TTY), join(serial.root, 'class', 'tty', 'ttyUSB0'));
    const result = hotplugdTest(['--sysfs', serial.root, join(serial.root, 'class/tty/ttyUSB0')]);
    expect(result.device).toBe(TTY);
  });

  const usageErrors: [string, string[], RegExp][] = [
    ['no device', [], /give either a DEVPATH or --event FILE/],
    ['a missing device', ['/devices/none'], /no device "\/devices\/none"/],
    ['an event without DEVPATH', ['--event', '/dev/null'], /the event has no DEVPATH or SUBSYSTEM/],
  ];
  it.each(usageErrors)('exits 2 on %s', (_, args, message) => {
    const result = spawnSync(process.execPath, [CLI, 'test', '--rules-dir', 'rules.d', '--sysfs', serial.root, ...args], { cwd: REPO, encoding: 'utf8' });
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(message);
  });
});
