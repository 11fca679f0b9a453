// The kernel's netlink sockets, NETLINK_KOBJECT_UEVENT (devices) and NETLINK_ROUTE (links
// and addresses), through our small native addon (native/uevent_socket.c), one code path
// for both: forced receive buffer, pause/resume, batch reads, ENOBUFS reports.
import { getSystemErrorName } from 'node:util';
import { HotplugError } from '../errors.js';
import { netlinkAddon } from './native.js';


export const NETLINK_ROUTE = 0;
export const NETLINK_KOBJECT_UEVENT = 15;
/** Multicast group 1 carries the kernel's own uevents (udevd re-broadcasts on group 2). */
export const KERNEL_GROUP = 1;
/**
 * As udevd: 128 MiB, forced past net.core.rmem_max when we may (root). The kernel only
 * uses it while we lag behind, and it is what absorbs a storm while our queue is full.
 */
export const DEFAULT_RECEIVE_BUFFER_BYTES = 128 * 1024 * 1024;

const READ_BUFFER_BYTES = 1024 * 1024;
const MAX_DATAGRAMS_PER_READ = 1024;
/** Room left for each read: a uevent is at most 8 KiB; a route dump's datagrams up to 32 KiB. */
const SLOT_BYTES: Record<number, number> = { [NETLINK_KOBJECT_UEVENT]: 8192, [NETLINK_ROUTE]: 64 * 1024 };

export interface DatagramHandlers {
  /** `bytes` is a view into a reused buffer: consume it before returning. */
  onDatagram(bytes: Buffer, senderPort: number, truncated: boolean): void;
  /** The kernel dropped events because our receive buffer was full (ENOBUFS). */
  onOverflow(reports: number): void;
  onError(error: Error): void;
  /** How many datagrams the consumer can take now; reads never exceed it (default: a full batch). */
  room?(): number;
}

export class KernelSocket {
  readonly receiveBufferBytes: number;
  readonly receiveBufferForced: boolean;
  /** Our netlink port id (the kernel's answers to our requests carry it). */
  readonly port: number;
  #fd: number;
  #slotBytes: number;
  #handle: object;
  #handlers: DatagramHandlers;
  #buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  #meta = new Int32Array(1 + 3 * MAX_DATAGRAMS_PER_READ);
  #paused = true;
  #closed = false;
  #sending: Promise<number> | undefined;

  /** Opens and binds the socket; reading starts with resume(). */
  constructor(handlers: DatagramHandlers, receiveBufferBytes = DEFAULT_RECEIVE_BUFFER_BYTES, groups = KERNEL_GROUP, protocol = NETLINK_KOBJECT_UEVENT) {
    let opened;
    try {
      opened = netlinkAddon().open(protocol, groups, receiveBufferBytes);
    } catch (error) {
      const what = protocol === NETLINK_ROUTE ? 'route (NETLINK_ROUTE)' : 'uevent';
      throw new HotplugError('ESOCKET', `Failed to open the kernel ${what} socket: ${(error as Error).message}`, {
        cause: error,
      });
    }
    this.#fd = opened.fd;
    this.port = opened.port;
    this.#slotBytes = SLOT_BYTES[protocol] ?? 8192;
    // The kernel reports twice the requested size (it counts its own bookkeeping).
    this.receiveBufferBytes = opened.rcvbuf;
    this.receiveBufferForced = opened.forced;
    this.#handlers = handlers;
    this.#handle = netlinkAddon().watch(this.#fd, (status) => this.#onReadable(status));
  }

  get paused(): boolean {
    return this.#paused;
  }

  /** Stops reading: the kernel buffer absorbs what arrives meanwhile. */
  pause(): void {
    if (this.#paused || this.#closed) return;
    this.#paused = true;
    netlinkAddon().stop(this.#handle);
  }

  resume(): void {
    if (!this.#paused || this.#closed) return;
    this.#paused = false;
    netlinkAddon().start(this.#handle);
  }

  /**
   * Reads what the kernel has queued now, if not paused (settle: nothing sent may stay
   * unread). Returns the datagrams read (0: nothing was readable, or paused).
   */
  readNow(): number {
    return !this.#paused && !this.#closed ? this.#read() : 0;
  }

  /** Sends one datagram to multicast `groups` (a bit mask); 0 bytes when nobody listens. */
  send(datagram: Buffer, groups: number): number {
    if (this.#closed) return 0;
    return netlinkAddon().send(this.#fd, datagram, groups);
  }

  /**
   * Sends datagrams from `buffer` ((offset, length, groups) triples in `table`) with sendmmsg
   * on a thread of libuv's pool, one batch at a time; resolves with the count sent.
   */
  sendBatch(buffer: Buffer, table: Uint32Array): Promise<number> {
    if (this.#closed) return Promise.resolve(0);
    if (this.#sending !== undefined) return Promise.reject(new Error('a batch is being sent on this socket'));
    const sending = netlinkAddon()
      .sendBatch(this.#fd, buffer, table)
      .then((result) => {
        if (result < 0) throw new HotplugError('ESYSCALL', `sendmmsg(netlink): ${getSystemErrorName(result)}`);
        return result;
      })
      .finally(() => {
        this.#sending = undefined;
        // Closed meanwhile: the descriptor was kept for the batch's thread.
        if (this.#closed) netlinkAddon().close(this.#handle);
      });
    this.#sending = sending;
    return sending;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#paused = true;
    if (this.#sending === undefined) netlinkAddon().close(this.#handle);
  }

  #onReadable(status: number): void {
    this.#read();
    // A non-zero status means libuv stopped watching (socket error, e.g. ENOBUFS); the
    // read above consumed the error, so watch again unless we were paused meanwhile.
    if (status !== 0 && !this.#paused && !this.#closed) netlinkAddon().start(this.#handle);
  }

  #read(): number {
    let total = 0;
    // Drain in batches, but give the event loop back after a bounded amount of work.
    for (let round = 0; round < 16 && !this.#paused; round++) {
      let count: number;
      const room = this.#handlers.room?.() ?? MAX_DATAGRAMS_PER_READ;
      if (room <= 0) return total;
      const meta = room >= MAX_DATAGRAMS_PER_READ ? this.#meta : this.#meta.subarray(0, 1 + 3 * room);
      try {
        count = netlinkAddon().recv(this.#fd, this.#buffer, meta, this.#slotBytes);
      } catch (error) {
        this.#handlers.onError(error as Error);
        return total;
      }
      total += count;
      if (meta[0]! > 0) this.#handlers.onOverflow(meta[0]!);
      for (let i = 0; i < count; i++) {
        const offset = meta[1 + 3 * i]!;
        const length = meta[2 + 3 * i]!;
        const truncated = length < 0;
        const bytes = this.#buffer.subarray(offset, offset + Math.abs(length));
        this.#handlers.onDatagram(bytes, meta[3 + 3 * i]!, truncated);
        if (this.#closed) return total;
      }
      if (count === 0) return total;
    }
    return total;
  }
}

/**
 * A libuv poll watcher on any descriptor (udev's control socket and its connections):
 * `onReadable` runs while it is readable; close() stops it and closes the descriptor.
 */
export class FdWatcher {
  #handle: object;
  #closed = false;

  constructor(fd: number, onReadable: () => void) {
    this.#handle = netlinkAddon().watch(fd, () => {
      if (!this.#closed) onReadable();
    });
    netlinkAddon().start(this.#handle);
  }

  /** Stops or restarts watching (the fd stays open). */
  pause(paused: boolean): void {
    if (this.#closed) return;
    if (paused) netlinkAddon().stop(this.#handle);
    else netlinkAddon().start(this.#handle);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    netlinkAddon().close(this.#handle);
  }
}

