// `hotplugd wait`: answers when a device exists and every event for it has been
// processed (so its node, links and permissions are in place), or, with `removed`,
// when it is gone. The device is named by a /dev path (resolved through the node's
// major:minor), a /sys path, or a devpath; a name that does not exist yet is resolved
// again after each processed event.
import { existsSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';

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

/** The devpath a user-given name means now, or undefined when it does not resolve (yet). */
export function resolveDevpath(path: string, state: DeviceState): string | undefined {
  if (path.startsWith('/dev/')) {
    const node = join(state.devRoot, path.slice('/dev/'.length));
    let stat;
    try {
      stat = statSync(node);
    } catch {
      return undefined;
    }
    if (!stat.isCharacterDevice() && !stat.isBlockDevice()) return undefined;
    const kind = stat.isBlockDevice() ? 'block' : 'char';
    // The split of dev_t glibc's major() and minor() make.
    const low = stat.rdev >>> 0;
    const high = Math.floor(stat.rdev / 2 ** 32);
    const major = (((low >>> 8) & 0xfff) | (high & 0xfffff000)) >>> 0;
    const minor = ((low & 0xff) | (((low >>> 12) | (high << 20)) & 0xffffff00)) >>> 0;
    return sysfsDevpath(join(state.sysfsRoot, 'dev', kind, `${major}:${minor}`), state.sysfsRoot);
  }
  if (path.startsWith('/sys/')) return sysfsDevpath(join(state.sysfsRoot, path.slice('/sys'.length)), state.sysfsRoot);
  return path;
}

function sysfsDevpath(path: string, sysfsRoot: string): string | undefined {
  if (!existsSync(path)) return undefined;
  const real = realpathSync(path);
  const root = realpathSync(sysfsRoot);
  return real.startsWith(`${root}/`) ? real.slice(root.length) : undefined;
}

/** True when the wait is over. */
export function waitSatisfied(target: WaitTarget, state: DeviceState): boolean {
  const devpath = resolveDevpath(target.path, state);
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
