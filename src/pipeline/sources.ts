// The pipeline's two kernel sockets, opened, paused, read and closed together: the uevent
// socket (devices) and, unless turned off, the route socket (links and addresses). Both
// feed the one queue through the intake; a network interface's remove reads the route
// socket first, so its link-down and addresses removed are queued before it.
import type { Incident } from '../history/records.js';
import type { Uevent } from '../uevent/event.js';
import type { Logger } from '../log.js';
import { DEFAULT_RECEIVE_BUFFER_BYTES } from '../os/netlink.js';
import { KernelUeventSource, countMalformed } from '../uevent/source.js';
import { DEFAULT_ROUTE_RECEIVE_BUFFER_BYTES } from '../uevent/route-source.js';
import type { Intake } from './intake.js';
import { LinkIntake } from './link-intake.js';

export interface SourceOptions {
  receiveBufferBytes?: number | undefined;
  linkReceiveBufferBytes?: number | undefined;
  /** Listen to NETLINK_ROUTE too (default true). */
  links: boolean;
  sysfsRoot: string;
  log: Logger;
}

/** Where the sockets hand what they read: the intake and the queue behind it. */
export interface SourceSink {
  intake: Intake;
  /** Queues a link event. */
  push(event: Uevent): void;
  reportIncident(incident: Incident): void;
  /** Room left in the queue. */
  room(): number;
  /** The device has an event queued or processed: its `add` was read. */
  known(devpath: string): boolean;
}

/** What the pipeline needs of its sources: the kernel's sockets here, a fake in tests. */
export interface EventSources {
  open(sink: SourceSink): void;
  /** Starts reading: `snapshot` reports what is present (the route socket's dump), `read` unless the queue is full. */
  start(snapshot: boolean, read: boolean): void;
  pause(): void;
  resume(): void;
  /** Reads what is waiting now; the messages read. */
  readNow(): number;
  close(): void;
  /** The uevent socket's receive buffer, and how often it overflowed, for the overflow warning. */
  receiveBufferBytes(): number | undefined;
  enobufs(): number | undefined;
  counters(): SourceCounters;
}

/** What the sources count (`hotplugd status`). */
export interface SourceCounters {
  received: number;
  accepted: number;
  forged: number;
  malformed: number;
  malformedByReason: Record<string, number> | undefined;
  enobufs: number;
  linkMessages: number;
  linkChanges: number;
  linkForged: number;
  linkMalformed: number;
  linkEnobufs: number;
  linkResyncs: number;
  linksKnown: number;
}

export class KernelSources implements EventSources {
  uevents: KernelUeventSource | undefined;
  links: LinkIntake | undefined;
  #o: SourceOptions;
  #inRouteChange = false;

  constructor(options: SourceOptions) {
    this.#o = options;
  }

  /** Opens the sockets (not read until start()); warns when a buffer is smaller than wanted. */
  open(sink: SourceSink): void {
    const { log } = this.#o;
    const { intake, room } = sink;
    if (this.#o.links) {
      this.links = new LinkIntake(
        {
          sysfsRoot: this.#o.sysfsRoot,
          log,
          push: (event) => sink.push(event),
          reportIncident: (incident) => sink.reportIncident(incident),
          room,
          logRejection: (r) => intake.logRejection(r),
          beforeChange: (devpath) => this.#readUeventsFirst(devpath, sink),
        },
        this.#o.linkReceiveBufferBytes ?? DEFAULT_ROUTE_RECEIVE_BUFFER_BYTES,
      );
    }
    this.uevents = new KernelUeventSource(
      {
        onEvent: (event) => {
          if (event.action === 'remove' && event.subsystem === 'net') {
            // Not while a route message is being taken (#readUeventsFirst): that read is under way.
            if (!this.#inRouteChange) this.links?.source.socket.readNow();
            this.links?.forget(event.devpath);
          }
          intake.accept(event);
        },
        onReject: (rejection) => intake.logRejection(rejection),
        onOverflow: (reports) => intake.onOverflow(reports),
        onError: (error) => log.error({ err: error }, `Failed to read the kernel uevent socket: ${error.message}`),
        room,
      },
      this.#o.receiveBufferBytes ?? DEFAULT_RECEIVE_BUFFER_BYTES,
    );
    const socket = this.uevents.socket;
    const wanted = this.#o.receiveBufferBytes ?? DEFAULT_RECEIVE_BUFFER_BYTES;
    if (!socket.receiveBufferForced && socket.receiveBufferBytes < wanted) {
      log.warn(
        { receiveBufferBytes: socket.receiveBufferBytes, wanted },
        'Receive buffer is smaller than wanted (SO_RCVBUFFORCE needs CAP_NET_ADMIN): storms may lose events; run as root or raise net.core.rmem_max',
      );
    }
  }

  // A change of an interface whose `add` has not been read yet came after that `add` (the
  // kernel sends it when the interface registers): the uevent socket is read first, so the
  // queue has the add before the link-up whichever socket the event loop looked at first.
  // Interfaces already known are left alone: their link-down must stay before their remove.
  #readUeventsFirst(devpath: string, sink: SourceSink): void {
    if (sink.known(devpath) || this.uevents === undefined) return;
    this.#inRouteChange = true;
    try {
      this.uevents.socket.readNow();
    } finally {
      this.#inRouteChange = false;
    }
  }

  /**
   * Starts reading (unless the queue is full: the scheduler resumes when it has room); the
   * route socket first dumps the links and addresses present (reported when `snapshot`).
   */
  start(snapshot: boolean, read: boolean): void {
    // The uevent socket is watched first: when both sockets already hold messages (an
    // interface added and brought up while the daemon started), the event loop is told of
    // them in the order they were watched, and the add is read before the link-up.
    if (read) this.uevents?.resume();
    this.links?.source.start(snapshot);
    if (!read) this.links?.source.socket.pause();
  }

  pause(): void {
    this.uevents?.pause();
    this.links?.source.socket.pause();
  }

  resume(): void {
    this.uevents?.resume();
    this.links?.source.socket.resume();
  }

  /** Reads what both sockets hold now; the datagrams read. */
  readNow(): number {
    return (this.links?.source.socket.readNow() ?? 0) + (this.uevents?.socket.readNow() ?? 0);
  }

  receiveBufferBytes(): number | undefined {
    return this.uevents?.socket.receiveBufferBytes;
  }

  enobufs(): number | undefined {
    return this.uevents?.counters.enobufs;
  }

  close(): void {
    this.uevents?.close();
    this.links?.source.close();
  }

  counters(): SourceCounters {
    const source = this.uevents?.counters;
    const links = this.links?.source.counters;
    return {
      received: source?.received ?? 0,
      accepted: source?.accepted ?? 0,
      forged: source?.forged ?? 0,
      malformed: source ? countMalformed(source) : 0,
      malformedByReason: source?.malformed,
      enobufs: source?.enobufs ?? 0,
      linkMessages: links?.received ?? 0,
      linkChanges: links?.changes ?? 0,
      linkForged: links?.forged ?? 0,
      linkMalformed: links ? countMalformed(links) : 0,
      linkEnobufs: links?.enobufs ?? 0,
      linkResyncs: links?.resyncs ?? 0,
      linksKnown: this.links?.source.states.size ?? 0,
    };
  }
}
