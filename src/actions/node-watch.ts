// udev's OPTIONS+="watch": an inotify watch on a device's node. When a program that had
// the node open for writing closes it (a partition table or a filesystem was written), a
// `change` is synthesised as udevd does, by writing to the device's uevent file (and its
// partitions' for a disk), so the rules see the new contents: a by-uuid or by-label link
// follows a mkfs. For a disk, the kernel is first asked to re-read its partition table
// (BLKRRPART, when no one holds the disk): if that worked and it has partitions, the kernel
// has sent their events itself. The kernel's event carries SYNTH_ARG_WATCH=1 (the kernel takes letters and
// digits only in those keys), so the history shows why it happened. A watch lasts while the
// device's latest event asks for it.
import { readdirSync, writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Plan } from '../rules/plan.js';
import type { Uevent } from '../uevent/event.js';
import { FdWatcher } from '../os/netlink.js';
import { inotify, rereadPartitions } from '../os/system-calls.js';

const IN_CLOSE_WRITE = 0x8;
const IN_IGNORED = 0x8000;

interface Watch {
  wd: number;
  devnode: string;
  /** A whole disk (not a partition, not device-mapper): its partition table is re-read. */
  disk: boolean;
}

export class NodeWatcher {
  /** Changes synthesised after a node was written. */
  synthesized = 0;
  /** Partition tables re-read after a disk was written. */
  rereads = 0;
  #fd: number | undefined;
  #watcher: FdWatcher | undefined;
  #byDevpath = new Map<string, Watch>();
  #byWd = new Map<number, string>();
  #sysfsRoot: string;
  #log: Logger;

  constructor(sysfsRoot: string, log: Logger) {
    this.#sysfsRoot = sysfsRoot;
    this.#log = log;
  }

  /** How many nodes are watched. */
  get size(): number {
    return this.#byDevpath.size;
  }

  /** Follows a processed event: watch when its plan asks, stop otherwise and on remove. */
  follow(event: Uevent, plan: Plan | undefined): void {
    const wanted = event.action !== 'remove' && plan?.watch === true && plan.devnode !== null ? plan.devnode : undefined;
    const current = this.#byDevpath.get(event.devpath);
    if (current !== undefined && current.devnode === wanted) return;
    if (current !== undefined) this.#unwatch(event.devpath, current);
    const disk = event.subsystem === 'block' && event.properties.DEVTYPE === 'disk' && !(event.properties.DEVNAME ?? '').startsWith('dm-');
    if (wanted !== undefined) this.#watch(event.devpath, wanted, disk);
  }

  close(): void {
    this.#watcher?.close();
    this.#watcher = undefined;
    this.#fd = undefined;
    this.#byDevpath.clear();
    this.#byWd.clear();
  }

  #watch(devpath: string, devnode: string, disk: boolean): void {
    try {
      if (this.#fd === undefined) {
        this.#fd = inotify.init();
        this.#watcher = new FdWatcher(this.#fd, () => this.#read());
      }
      const wd = inotify.watchClose(this.#fd, devnode);
      this.#byDevpath.set(devpath, { wd, devnode, disk });
      this.#byWd.set(wd, devpath);
    } catch (error) {
      this.#log.warn({ devpath, devnode, err: error }, `Failed to watch ${devnode}: ${describeError(error)}`);
    }
  }

  #unwatch(devpath: string, watch: Watch): void {
    this.#byDevpath.delete(devpath);
    // One inode may be watched for two devpaths only briefly (a rename); keep its wd while in use.
    if (this.#byWd.get(watch.wd) === devpath) this.#byWd.delete(watch.wd);
    if (this.#fd === undefined || [...this.#byDevpath.values()].some((w) => w.wd === watch.wd)) return;
    try {
      inotify.unwatch(this.#fd, watch.wd);
    } catch (error) {
      this.#log.warn({ devpath, err: error }, `Failed to stop watching ${watch.devnode}: ${describeError(error)}`);
    }
  }

  #read(): void {
    if (this.#fd === undefined) return;
    let events: [number, number][];
    try {
      events = inotify.read(this.#fd);
    } catch (error) {
      this.#log.error({ err: error }, `Failed to read device node watches: ${describeError(error)}`);
      return;
    }
    for (const [wd, mask] of events) {
      const devpath = this.#byWd.get(wd);
      if (devpath === undefined) continue;
      if (mask & IN_IGNORED) {
        // The node is gone (its device removed, or someone deleted it).
        this.#byWd.delete(wd);
        this.#byDevpath.delete(devpath);
      } else if (mask & IN_CLOSE_WRITE) {
        this.#written(devpath);
      }
    }
  }

  #written(devpath: string): void {
    const watch = this.#byDevpath.get(devpath);
    if (watch?.disk) {
      const failed = rereadPartitions(watch.devnode);
      const partitions = this.#partitions(devpath);
      if (failed === null) {
        this.rereads++;
        this.#log.info({ devpath, partitions: partitions.length }, 'Disk written: partition table re-read');
        // The kernel sent the partitions' events (and the disk's change) itself.
        if (partitions.length > 0) return;
      } else this.#log.debug({ devpath, reason: failed }, 'Disk written: partition table not re-read');
      // No partitions, or the disk is busy: the disk and its partitions are probed again.
      this.#synthesizeChange(devpath, partitions);
    } else this.#synthesizeChange(devpath, []);
  }

  #synthesizeChange(devpath: string, partitions: string[]): void {
    const uuid = randomUUID();
    const targets = [devpath, ...partitions];
    for (const target of targets) {
      try {
        writeFileSync(`${this.#sysfsRoot}${target}/uevent`, `change ${uuid} WATCH=1`);
        this.synthesized++;
      } catch (error) {
        this.#log.warn({ devpath: target, err: error }, `Failed to synthesise a change for ${target}: ${describeError(error)}`);
      }
    }
    this.#log.info({ devpath, uuid, events: targets.length }, 'Device node written: change synthesised');
  }

  // A disk's partitions are its subdirectories with a `partition` file.
  #partitions(devpath: string): string[] {
    try {
      return readdirSync(`${this.#sysfsRoot}${devpath}`, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => `${devpath}/${e.name}`)
        .filter((child) => {
          try {
            return readdirSync(`${this.#sysfsRoot}${child}`).includes('partition');
          } catch {
            return false; // gone meanwhile
          }
        });
    } catch {
      return [];
    }
  }
}
