// Views of ancestor devices kept across events. A USB device's descriptors do not change
// while it is plugged, yet every event of its interfaces, ttys and disks walks up to it:
// reading them once per device instead of once per event is most of the cost of rules.
// A view is dropped when its device gets an event (and with its subtree on remove/move),
// so a re-plugged device is read afresh. The device of an event itself is never cached.
import { DeviceView, type AncestorViews, type Sysfs } from './sysfs.js';

export const DEFAULT_MAX_CACHED_DEVICES = 4096;

export class AncestorCache implements AncestorViews {
  readonly sysfs: Sysfs;
  #views = new Map<string, DeviceView | null>();
  #maxEntries: number;

  constructor(sysfs: Sysfs, maxEntries = DEFAULT_MAX_CACHED_DEVICES) {
    this.sysfs = sysfs;
    this.#maxEntries = maxEntries;
  }

  get size(): number {
    return this.#views.size;
  }

  /** The ancestors of `devpath` that are devices, nearest first. */
  of(devpath: string): DeviceView[] {
    const parents: DeviceView[] = [];
    for (let at = devpath.lastIndexOf('/'); at > 0; at = devpath.lastIndexOf('/', at - 1)) {
      const parent = devpath.slice(0, at);
      let view = this.#views.get(parent);
      if (view === undefined) {
        view = this.sysfs.exists(parent) ? new DeviceView(this.sysfs, parent, this) : null;
        // A full cache starts over rather than tracking use: devices are few on a board.
        if (this.#views.size >= this.#maxEntries) this.#views.clear();
        this.#views.set(parent, view);
      }
      if (view !== null) parents.push(view);
    }
    return parents;
  }

  /** An event for `devpath`: forget its view; on remove or move, everything below it too. */
  forget(devpath: string, subtree: boolean): void {
    this.#views.delete(devpath);
    if (!subtree) return;
    const prefix = `${devpath}/`;
    for (const key of this.#views.keys()) if (key.startsWith(prefix)) this.#views.delete(key);
  }

  clear(): void {
    this.#views.clear();
  }
}
