// Sends each processed event to libudev listeners (group 2) and, in the kernel's
// format, to libudev-zero listeners (group 4), from a netlink socket of its own.
// The first event after a quiet millisecond goes at once. In a storm, the events that follow
// within it wait and go together, in one sendmmsg on a thread of libuv's pool (native/
// broadcast_batch.c): each datagram that finds a listener asleep wakes it, and delivering and
// waking cost the daemon's one thread as much as evaluating an event's rules; a burst wakes a
// listener once, and off the main thread. One batch at a time: everything is sent in
// processing order. drain() sends what waits at once and resolves when all is sent (the queue
// flag waits for it: settled means passed on); close() sends the rest.
import type { Logger } from '../log.js';
import type { Plan } from '../rules/plan.js';
import { LIBUDEV_GROUP, RAW_GROUP, broadcastMessages, type BroadcastEvent } from '../uevent/broadcast.js';
import type { Uevent } from '../uevent/event.js';
import { KernelSocket } from '../os/netlink.js';

const COALESCE_MS = 1;
// Events that make a batch worth sending without waiting out the millisecond.
const FULL_BATCH = 64;

export class Broadcaster {
  failures = 0;
  #socket: KernelSocket | undefined;
  #log: Logger;
  /** Events waiting to be sent (their datagrams are built when a batch is made). */
  #waiting: BroadcastEvent[] = [];
  #timer: NodeJS.Timeout | undefined;
  #sending: Promise<void> | undefined;
  #lastSentAt = -Infinity;
  #now: () => number;
  #drained: (() => void)[] = [];

  constructor(log: Logger, now: () => number = () => performance.now()) {
    this.#log = log;
    this.#now = now;
    try {
      // Bound to no group: it only sends. Its tiny receive buffer never fills.
      this.#socket = new KernelSocket({ onDatagram() {}, onOverflow() {}, onError() {} }, 4096, 0);
    } catch (error) {
      log.warn({ err: error }, `Processed events will not be passed on to libudev listeners: ${(error as Error).message}`);
    }
  }

  /** Passes one processed event on. Events without SEQNUM (coldplug) are not: libudev rejects them. */
  send(event: Uevent, plan: Plan | undefined): void {
    const socket = this.#socket;
    if (!socket || event.seqnum === undefined) return;
    const properties = plan?.properties ?? event.properties;
    const message: BroadcastEvent = {
      action: event.action,
      devpath: event.devpath,
      subsystem: event.subsystem,
      devtype: properties.DEVTYPE,
      properties,
      tags: plan?.tags ?? [],
      devnode: plan?.devnode ?? undefined,
    };
    const now = this.#now();
    if (this.#waiting.length === 0 && this.#sending === undefined && !(now - this.#lastSentAt < COALESCE_MS && now >= this.#lastSentAt)) {
      this.#lastSentAt = now;
      this.#sendNow(socket, [message]);
      return;
    }
    this.#waiting.push(message);
    if (this.#sending === undefined) this.#timer ??= setTimeout(() => this.#sendBatch(), COALESCE_MS);
  }

  /** Sends what waits now; resolves once everything given so far is sent. */
  drain(): Promise<void> | undefined {
    if (this.#waiting.length === 0 && this.#sending === undefined) return undefined;
    if (this.#sending === undefined) this.#sendBatch();
    return new Promise((resolve) => this.#drained.push(resolve));
  }

  /** Sends what waits (now, when no batch is on its way; else once it is) and closes. */
  close(): void {
    const socket = this.#socket;
    this.#socket = undefined;
    clearTimeout(this.#timer);
    if (socket === undefined) return;
    const rest = () => {
      this.#sendNow(socket, this.#waiting.splice(0));
      socket.close();
    };
    if (this.#sending === undefined) rest();
    else void this.#sending.then(rest);
  }

  #sendBatch(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const socket = this.#socket;
    // Closed: close() sends what waits.
    if (socket === undefined || this.#waiting.length === 0) return this.#settle();
    const batch = this.#waiting.splice(0);
    const { buffer, table } = batchOf(batch);
    this.#sending = socket.sendBatch(buffer, table).then(
      () => undefined,
      (error: Error) => this.#failed(error),
    );
    void this.#sending.then(() => {
      this.#sending = undefined;
      this.#lastSentAt = this.#now();
      // What came meanwhile goes next: at once when a drain waits or a batch is full, else
      // after the coalescing millisecond.
      if (this.#waiting.length >= FULL_BATCH || (this.#waiting.length > 0 && this.#drained.length > 0)) this.#sendBatch();
      else if (this.#waiting.length > 0) this.#timer ??= setTimeout(() => this.#sendBatch(), COALESCE_MS);
      else this.#settle();
    });
  }

  #settle(): void {
    for (const resolve of this.#drained.splice(0)) resolve();
  }

  #sendNow(socket: KernelSocket, messages: readonly BroadcastEvent[]): void {
    for (const message of messages) {
      try {
        const { libudev, kernel } = broadcastMessages(message);
        socket.send(libudev, LIBUDEV_GROUP);
        socket.send(kernel, RAW_GROUP);
      } catch (error) {
        this.#failed(error as Error);
      }
    }
  }

  #failed(error: Error): void {
    this.failures++;
    if (this.failures === 1) {
      this.#log.warn({ err: error }, `Failed to pass an event on to libudev listeners (said once; sending to netlink groups needs root): ${error.message}`);
    }
  }
}

/** The batch's datagrams (libudev's and the kernel format's of each event) in one buffer, and their (offset, length, groups). */
function batchOf(messages: readonly BroadcastEvent[]): { buffer: Buffer; table: Uint32Array } {
  const table = new Uint32Array(messages.length * 6);
  let buffer = Buffer.allocUnsafe(messages.length * 1024);
  let used = 0;
  messages.forEach((message, i) => {
    // Built in one reused buffer, then copied here.
    const { libudev, kernel } = broadcastMessages(message);
    const needed = used + libudev.length + kernel.length;
    if (needed > buffer.length) {
      const grown = Buffer.allocUnsafe(Math.max(needed, buffer.length * 2));
      buffer.copy(grown, 0, 0, used);
      buffer = grown;
    }
    table.set([used, libudev.length, LIBUDEV_GROUP], 6 * i);
    used += libudev.copy(buffer, used);
    table.set([used, kernel.length, RAW_GROUP], 6 * i + 3);
    used += kernel.copy(buffer, used);
  });
  return { buffer, table };
}
