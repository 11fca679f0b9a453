// A fake sysfs tree in a temporary directory, built from the real layouts in
// ../shared/fixtures/uevents (attribute files, subsystem and driver links).
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import type { FixtureSysfs } from './fixtures.js';

export interface FakeSysfs {
  root: string;
  /** Devpaths that have a subsystem: the devices the kernel would send events for. */
  devices: string[];
  remove(): void;
}

/** A link from the device directory to `target` (relative to the sysfs root). */
function link(root: string, devpath: string, name: string, target: string): void {
  mkdirSync(join(root, target), { recursive: true });
  symlinkSync(relative(join(root, devpath), join(root, target)), join(root, devpath, name));
}

export function buildFakeSysfs(sysfs: FixtureSysfs): FakeSysfs {
  const root = mkdtempSync(join(tmpdir(), 'hotplugd-sysfs-'));
  const devices: string[] = [];
  for (const [devpath, entry] of Object.entries(sysfs)) {
    const dir = join(root, devpath);
    mkdirSync(dir, { recursive: true });
    // Every device directory has a uevent file; fixtures from attribute walks do not record its text.
    writeFileSync(join(dir, 'uevent'), entry.uevent === undefined ? '' : `${entry.uevent}\n`);
    for (const [name, value] of Object.entries(entry)) {
      if (name.startsWith('_') || name === 'uevent') continue;
      mkdirSync(dirname(join(dir, name)), { recursive: true });
      writeFileSync(join(dir, name), `${value}\n`);
    }
    const subsystemTarget = entry._subsystem_link
      ? relative(root, join(dir, entry._subsystem_link))
      : entry._subsystem
        ? `bus/${entry._subsystem}`
        : undefined;
    if (subsystemTarget) {
      link(root, devpath, 'subsystem', subsystemTarget);
      devices.push(devpath);
    }
    const driverTarget = entry._driver_link
      ? relative(root, join(dir, entry._driver_link))
      : entry._driver && subsystemTarget
        ? `${subsystemTarget}/drivers/${entry._driver}`
        : undefined;
    if (driverTarget) link(root, devpath, 'driver', driverTarget);
  }
  return { root, devices, remove: () => rmSync(root, { recursive: true, force: true }) };
}

/** Every fixture's sysfs devices merged into one tree (their devpaths do not collide). */
export function mergeSysfs(trees: (FixtureSysfs | undefined)[]): FixtureSysfs {
  const merged: FixtureSysfs = {};
  for (const tree of trees) for (const [devpath, entry] of Object.entries(tree ?? {})) merged[devpath] ??= entry;
  return merged;
}
