// Between the kernel socket and the event handler: events start in arrival order as
// soon as no earlier conflicting event is pending (see order.ts), up to `maxRunning`
// at once. An event handled synchronously (no programs) finishes on the spot, so a
// storm costs no promise per event. The number pending (queued + running) is bounded:
// at `capacity` the producer is told to stop reading, at half it may read again.
import { DependencyTracker, type OrderEntry, type OrderKey } from './order.js';

export interface SchedulerHooks<T> {
  /** Handles one event; a returned promise means it finishes later. Must not throw. */
  handle(item: T): void | Promise<void>;
  onFull(): void;
  onRoom(): void;
  /** Nothing is pending any more (after at least one event). */
  onIdle?(): void;
  /** Something is pending again after nothing was. */
  onBusy?(): void;
}

export interface SchedulerOptions {
  capacity: number;
  /** Events handled at once (only asynchronous ones can overlap). */
  maxRunning: number;
  /** Events started per turn of the event loop, so socket reads get their turn. */
  chunk?: number;
}

export class EventScheduler<T extends OrderKey> {
  readonly capacity: number;
  maxRunning: number;
  #tracker = new DependencyTracker<T>();
  /** Events free to start, earliest arrival first. */
  #ready = new ArrivalHeap<T>();
  #arrivals = 0;
  #pending = 0;
  #running = 0;
  #full = false;
  #scheduled = false;
  #chunk: number;
  #hooks: SchedulerHooks<T>;
  #idleWaiters: (() => void)[] = [];
  /** Not started yet, in arrival order (a Set keeps insertion order). */
  #queued = new Set<OrderEntry<T>>();
  #closed = false;
  #held = false;

  constructor(options: SchedulerOptions, hooks: SchedulerHooks<T>) {
    this.capacity = options.capacity;
    this.maxRunning = options.maxRunning;
    this.#chunk = options.chunk ?? 1024;
    this.#hooks = hooks;
  }

  /** Events queued or running. */
  get length(): number {
    return this.#pending;
  }

  get running(): number {
    return this.#running;
  }

  /** True while an event on exactly this devpath is queued or running. */
  hasPending(devpath: string): boolean {
    return this.#tracker.hasPending(devpath);
  }

  push(item: T): void {
    if (this.#closed) return;
    const entry = this.#tracker.add(item, item, this.#arrivals++);
    this.#queued.add(entry);
    if (++this.#pending === 1) this.#hooks.onBusy?.();
    if (entry.waitingOn === 0) this.#ready.push(entry);
    if (!this.#full && this.#pending >= this.capacity) {
      this.#full = true;
      this.#hooks.onFull();
    }
    this.#schedule();
  }

  /** True while events wait without starting (udev's STOP_EXEC_QUEUE). */
  get held(): boolean {
    return this.#held;
  }

  /** Holds events (they stay queued, none starts) or lets them go on. */
  hold(on: boolean): void {
    this.#held = on;
    if (!on) this.#schedule();
  }

  /** Changes how many events run at once (udev's SET_CHILDREN_MAX). */
  setMaxRunning(count: number): void {
    this.maxRunning = count;
    this.#schedule();
  }

  /** Resolves true once nothing is pending, false after `timeoutMs` (never, without one). */
  idle(timeoutMs?: number): Promise<boolean> {
    if (this.#pending === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = timeoutMs === undefined ? undefined : setTimeout(() => {
        this.#idleWaiters = this.#idleWaiters.filter((w) => w !== done);
        resolve(false);
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.#idleWaiters.push(done);
    });
  }

  /**
   * Removes every event that has not started and returns them in arrival order; the
   * scheduler takes no more events after this (used when the daemon stops).
   */
  takeQueued(): T[] {
    this.#closed = true;
    const taken = [...this.#queued].map((entry) => entry.item);
    this.#pending -= this.#queued.size;
    this.#queued.clear();
    this.#ready = new ArrivalHeap<T>();
    return taken;
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    // setImmediate, not a microtask: socket reads get their turn between chunks.
    setImmediate(() => {
      this.#scheduled = false;
      this.#startSome(this.#chunk);
      if (this.#ready.size > 0 && this.#running < this.maxRunning) this.#schedule();
    });
  }

  #startSome(max: number): void {
    let started = 0;
    while (!this.#closed && !this.#held && started < max && this.#running < this.maxRunning && this.#ready.size > 0) {
      const entry = this.#ready.pop()!;
      this.#queued.delete(entry);
      started++;
      let outcome: void | Promise<void>;
      try {
        outcome = this.#hooks.handle(entry.item);
      } catch {
        outcome = undefined; // handle() must not throw; if it does, the event still ends
      }
      if (outcome === undefined) {
        this.#finish(entry);
        continue;
      }
      this.#running++;
      const end = () => {
        this.#running--;
        this.#finish(entry);
        this.#schedule();
      };
      outcome.then(end, end);
    }
  }

  #finish(entry: OrderEntry<T>): void {
    for (const next of this.#tracker.finish(entry)) if (!this.#closed) this.#ready.push(next);
    this.#pending--;
    if (this.#full && this.#pending <= this.capacity / 2) {
      this.#full = false;
      this.#hooks.onRoom();
    }
    if (this.#pending === 0) {
      this.#hooks.onIdle?.();
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const waiter of waiters) waiter();
    }
  }
}

/** A binary min-heap of entries by arrival: unrelated events still start in arrival order. */
class ArrivalHeap<T> {
  #items: OrderEntry<T>[] = [];

  get size(): number {
    return this.#items.length;
  }

  push(entry: OrderEntry<T>): void {
    const items = this.#items;
    let i = items.push(entry) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (items[parent]!.arrival <= entry.arrival) break;
      items[i] = items[parent]!;
      i = parent;
    }
    items[i] = entry;
  }

  pop(): OrderEntry<T> | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (items.length === 0 || last === undefined) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= items.length) break;
      const right = left + 1;
      const child = right < items.length && items[right]!.arrival < items[left]!.arrival ? right : left;
      if (items[child]!.arrival >= last.arrival) break;
      items[i] = items[child]!;
      i = child;
    }
    items[i] = last;
    return top;
  }
}
