// udev's ordering rule: an event waits while an earlier event on the same devpath, on
// an ancestor or on a descendant is queued or running; a `move` blocks both its paths.
// Events on one path are chained, so waiting for the newest pending event on each
// conflicting path is enough: that one finishes only after every earlier one did.
// Cost per event is O(depth of its devpath + its pending descendants), never O(queue).

export interface OrderKey {
  devpath: string;
  devpathOld?: string | undefined;
}

export interface OrderEntry<T> {
  readonly item: T;
  /** Arrival number: among events free to start, the earliest goes first. */
  readonly arrival: number;
  /** Unfinished earlier events this one waits for. */
  waitingOn: number;
  /** Later events waiting for this one. */
  dependents: OrderEntry<T>[];
  done: boolean;
  paths: string[];
}

// A storm repeats the same few devpaths: their ancestor lists are kept, not rebuilt.
const ancestorCache = new Map<string, string[]>();

/** `/a/b/c` → `/a`, `/a/b` (proper ancestors, outermost first). Do not modify the result. */
export function ancestorPaths(devpath: string): string[] {
  let ancestors = ancestorCache.get(devpath);
  if (ancestors) return ancestors;
  ancestors = [];
  for (let i = devpath.indexOf('/', 1); i > 0; i = devpath.indexOf('/', i + 1)) ancestors.push(devpath.slice(0, i));
  if (ancestorCache.size >= 4096) ancestorCache.clear();
  ancestorCache.set(devpath, ancestors);
  return ancestors;
}

/** True when two devpaths are the same device or one is the other's ancestor. */
export function devpathsConflict(a: string, b: string): boolean {
  if (a === b) return true;
  const [short, long] = a.length < b.length ? [a, b] : [b, a];
  return long.startsWith(short) && long.charCodeAt(short.length) === 47; // '/'
}

export class DependencyTracker<T> {
  /** The newest unfinished event on each path. */
  #newest = new Map<string, OrderEntry<T>>();
  /** For each path, the paths below it that have unfinished events. */
  #below = new Map<string, Set<string>>();

  get pendingPaths(): number {
    return this.#newest.size;
  }

  /** True while an event on exactly this devpath is queued or running. */
  hasPending(devpath: string): boolean {
    return this.#newest.has(devpath);
  }

  /** Registers an event (in arrival order); its `waitingOn` says how many it waits for. */
  add(item: T, key: OrderKey, arrival = 0): OrderEntry<T> {
    const paths = key.devpathOld !== undefined && key.devpathOld !== key.devpath ? [key.devpath, key.devpathOld] : [key.devpath];
    const entry: OrderEntry<T> = { item, arrival, waitingOn: 0, dependents: [], done: false, paths };
    const blockers = new Set<OrderEntry<T>>();
    for (const path of paths) {
      const same = this.#newest.get(path);
      if (same) blockers.add(same);
      for (const ancestor of ancestorPaths(path)) {
        const blocker = this.#newest.get(ancestor);
        if (blocker) blockers.add(blocker);
      }
      for (const descendant of this.#below.get(path) ?? []) blockers.add(this.#newest.get(descendant)!);
    }
    for (const blocker of blockers) {
      blocker.dependents.push(entry);
      entry.waitingOn++;
    }
    for (const path of paths) {
      if (!this.#newest.has(path)) {
        for (const ancestor of ancestorPaths(path)) {
          let set = this.#below.get(ancestor);
          if (!set) this.#below.set(ancestor, (set = new Set()));
          set.add(path);
        }
      }
      this.#newest.set(path, entry);
    }
    return entry;
  }

  /** Marks the event finished; returns the events that now wait for nothing. */
  finish(entry: OrderEntry<T>): OrderEntry<T>[] {
    if (entry.done) return [];
    entry.done = true;
    for (const path of entry.paths) {
      if (this.#newest.get(path) !== entry) continue;
      this.#newest.delete(path);
      for (const ancestor of ancestorPaths(path)) {
        const set = this.#below.get(ancestor);
        set?.delete(path);
        if (set?.size === 0) this.#below.delete(ancestor);
      }
    }
    const ready: OrderEntry<T>[] = [];
    for (const dependent of entry.dependents) if (--dependent.waitingOn === 0) ready.push(dependent);
    entry.dependents = [];
    return ready;
  }
}
