// `hotplugd wait`: answers when a device exists and every event for it has been
// processed (so its node, links and permissions are in place), or, with `removed`,
// when it is gone. The device is named by a /dev path (resolved through the node's
// major:minor), a /sys path, or a devpath (uevent/device-names.ts); a name that does not
// exist yet is resolved again after each processed event.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { resolveDeviceName } from '../uevent/device-names.js';

export interface WaitTarget {
  /** As the user gave it: /dev/..., /sys/... or /devices/... */
  path: string;
  removed: boolean;
}

export interface DeviceState {
  devRoot: string;
  sysfsRoot: string;
  /** The daemon has processed an add (or seen the device at start) and no remove since. */
  known(devpath: string): boolean;
  /** Events for the devpath are queued or running. */
  pending(devpath: string): boolean;
}

/** True when the wait is over. */
export function waitSatisfied(target: WaitTarget, state: DeviceState): boolean {
  const devpath = resolveDeviceName(target.path, state);
  if (target.removed) {
    if (devpath === undefined) return true;
    return !state.known(devpath) && !state.pending(devpath);
  }
  if (devpath === undefined || !state.known(devpath) || state.pending(devpath)) return false;
  // A /dev name must exist itself (a link is made while the event is processed).
  return !target.path.startsWith('/dev/') || existsSync(join(state.devRoot, target.path.slice('/dev/'.length)));
}

interface Waiter {
  target: WaitTarget;
  resolve: (satisfied: boolean) => void;
  timer: NodeJS.Timeout;
}

export class DeviceWaiters {
  #waiters = new Set<Waiter>();
  #state: DeviceState;

  constructor(state: DeviceState) {
    this.#state = state;
  }

  /** Resolves true when satisfied, false after `timeoutMs`. */
  wait(target: WaitTarget, timeoutMs: number): Promise<boolean> {
    if (waitSatisfied(target, this.#state)) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        target,
        resolve,
        timer: setTimeout(() => {
          this.#waiters.delete(waiter);
          resolve(false);
        }, timeoutMs),
      };
      this.#waiters.add(waiter);
    });
  }

  /** Called after each processed event (cheap when nobody waits). */
  check(): void {
    for (const waiter of this.#waiters) {
      if (!waitSatisfied(waiter.target, this.#state)) continue;
      clearTimeout(waiter.timer);
      this.#waiters.delete(waiter);
      waiter.resolve(true);
    }
  }

  cancelAll(): void {
    for (const waiter of this.#waiters) {
      clearTimeout(waiter.timer);
      waiter.resolve(false);
    }
    this.#waiters.clear();
  }
}
