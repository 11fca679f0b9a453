// The devices the daemon believes exist, kept up to date by processed events, so
// that after lost events a sysfs rescan can tell what appeared and what vanished.
import { createProperties, eventFromProperties, type Properties, type Uevent } from '../uevent/event.js';
import type { Sysfs } from '../uevent/sysfs.js';

export class PresentDevices {
  #devices = new Map<string, Properties>();

  get size(): number {
    return this.#devices.size;
  }

  has(devpath: string): boolean {
    return this.#devices.has(devpath);
  }

  /** Seeds the registry from the tree without producing events. */
  seed(sysfs: Sysfs): void {
    for (const devpath of sysfs.enumerate()) {
      const subsystem = sysfs.subsystem(devpath);
      if (subsystem !== undefined) this.know(devpath, subsystem);
    }
  }

  /** One device present at start (coldplug seeds the registry from the events it makes). */
  know(devpath: string, subsystem: string): void {
    const properties = createProperties();
    properties.DEVPATH = devpath;
    properties.SUBSYSTEM = subsystem;
    this.#devices.set(devpath, properties);
  }

  apply(event: Uevent): void {
    if (event.action === 'remove') {
      this.#devices.delete(event.devpath);
      return;
    }
    if (event.action === 'move' && event.devpathOld !== undefined) this.#devices.delete(event.devpathOld);
    this.#devices.set(event.devpath, event.properties);
  }

  /**
   * What changed in sysfs behind our back: `add` events for devices we do not know,
   * `remove` events (with the last properties we saw) for devices that are gone.
   */
  diff(sysfs: Sysfs, now = Date.now()): Uevent[] {
    const removed: Uevent[] = [];
    const present = new Set(sysfs.enumerate());
    for (const [devpath, last] of this.#devices) {
      // Some kobjects (net queues) send uevents but have no uevent file: test the directory.
      if (present.has(devpath) || sysfs.hasDirectory(devpath)) continue;
      const properties = createProperties();
      properties.ACTION = 'remove';
      for (const [key, value] of Object.entries(last)) if (key !== 'ACTION' && key !== 'SEQNUM') properties[key] = value;
      removed.push(eventFromProperties(properties, now, 'resync'));
    }
    // Children before parents, as the kernel removes them.
    const events = removed.sort((a, b) => b.devpath.length - a.devpath.length);
    for (const devpath of present) {
      if (this.#devices.has(devpath)) continue;
      const event = sysfs.synthesizeEvent(devpath, 'add', 'resync', now);
      if (event) events.push(event);
    }
    return events;
  }
}
