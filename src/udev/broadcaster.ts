// Sends each processed event to libudev listeners (group 2) and, in the kernel's
// format, to libudev-zero listeners (group 4), from a netlink socket of its own.
import type { Logger } from '../log.js';
import type { Plan } from '../rules/plan.js';
import { LIBUDEV_GROUP, RAW_GROUP, broadcastMessages, type BroadcastEvent } from '../uevent/broadcast.js';
import type { Uevent } from '../uevent/event.js';
import { KernelSocket } from '../os/netlink.js';

export class Broadcaster {
  failures = 0;
  #socket: KernelSocket | undefined;
  #log: Logger;

  constructor(log: Logger) {
    this.#log = log;
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
    this.#socket?.close();
    this.#socket = undefined;
  }
}
