// Sends each processed event to libudev listeners (group 2) and, in the kernel's
// format, to libudev-zero listeners (group 4), from a netlink socket of its own.
// In a storm, events finished within a millisecond of the last send go out together a moment
// later: each datagram that finds a listener asleep wakes it (on another CPU, an interrupt that
// cost the daemon ~15 µs an event here), and a burst wakes it once. The first event after a
// quiet millisecond goes at once; everything sent is in processing order; what waits is sent
// before the queue flag goes (settled means passed on) and at close.
import type { Logger } from '../log.js';
import type { Plan } from '../rules/plan.js';
import { LIBUDEV_GROUP, RAW_GROUP, broadcastMessages, type BroadcastEvent } from '../uevent/broadcast.js';
import type { Uevent } from '../uevent/event.js';
import { KernelSocket } from '../os/netlink.js';

const COALESCE_MS = 1;

export class Broadcaster {
  failures = 0;
  #socket: KernelSocket | undefined;
  #log: Logger;
  /** Events waiting to be sent (their datagrams are built when sent, in one reused buffer). */
  #waiting: BroadcastEvent[] = [];
  #timer: NodeJS.Timeout | undefined;
  #lastSentAt = -Infinity;
  #now: () => number;

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
    if (this.#waiting.length === 0 && !(now - this.#lastSentAt < COALESCE_MS && now >= this.#lastSentAt)) {
      this.#lastSentAt = now;
      this.#sendNow(socket, message);
      return;
    }
    this.#waiting.push(message);
    this.#timer ??= setTimeout(() => this.flush(), COALESCE_MS);
  }

  /** Sends what waits, in order. */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const waiting = this.#waiting;
    this.#waiting = [];
    this.#lastSentAt = this.#now();
    const socket = this.#socket;
    if (socket === undefined) return;
    for (const message of waiting) this.#sendNow(socket, message);
  }

  #sendNow(socket: KernelSocket, message: BroadcastEvent): void {
    try {
      const { libudev, kernel } = broadcastMessages(message);
      socket.send(libudev, LIBUDEV_GROUP);
      socket.send(kernel, RAW_GROUP);
    } catch (error) {
      this.failures++;
      if (this.failures === 1) {
        this.#log.warn({ err: error }, `Failed to pass an event on to libudev listeners (said once; sending to netlink groups needs root): ${(error as Error).message}`);
      }
    }
  }

  close(): void {
    this.flush();
    this.#socket?.close();
    this.#socket = undefined;
  }
}
