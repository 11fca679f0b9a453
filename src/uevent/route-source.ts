// The kernel's NETLINK_ROUTE stream → link and address changes, with every drop counted by
// its reason. Treated as the uevent side is: a large forced receive buffer, only the kernel
// (sender port 0) trusted, every message validated. On ENOBUFS (notifications were lost)
// the links and addresses are dumped again and what changed meanwhile is reported,
// flagged `resync`; the start-up snapshot is such a dump too, reported as `coldplug`.
import { KernelSocket, NETLINK_ROUTE } from '../os/netlink.js';
import { LinkStates, type LinkChange } from './link-state.js';
import { dumpRequest, parseRouteDatagram, ROUTE_REJECT_REASONS, RTM_GETADDR, RTM_GETLINK, type RouteMessage, type RouteRejectReason } from './rtnetlink.js';

const RTMGRP_LINK = 0x1;
const RTMGRP_IPV4_IFADDR = 0x10;
const RTMGRP_IPV6_IFADDR = 0x100;
/** Links, IPv4 and IPv6 addresses: what `ip monitor link address` listens to. */
export const ROUTE_GROUPS = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
/** Route notifications are small and fewer than uevents: 16 MiB holds about 100,000. */
export const DEFAULT_ROUTE_RECEIVE_BUFFER_BYTES = 16 * 1024 * 1024;

export type LinkSource = 'rtnetlink' | 'coldplug' | 'resync';

export interface RouteCounters {
  received: number;
  forged: number;
  malformed: Record<RouteRejectReason | 'truncated', number>;
  enobufs: number;
  /** Link and address changes reported (transitions only). */
  changes: number;
  /** Dumps done after lost notifications. */
  resyncs: number;
}

export interface RouteSourceHandlers {
  onChange(change: LinkChange, source: LinkSource): void;
  onReject?(rejection: { reason: RouteRejectReason | 'truncated' | 'forged'; detail: string; senderPort: number }): void;
  /** Notifications were lost; a resync dump follows. */
  onOverflow?(reports: number): void;
  /** A resync dump is over: how many changes it found, for how many ENOBUFS reports. */
  onResynced?(changes: number, reports: number): void;
  /** A dump request failed (the kernel's NLMSG_ERROR). */
  onError?(error: Error): void;
  room?(): number;
}

interface Dump {
  purpose: 'snapshot' | 'resync';
  phase: 'links' | 'addresses';
  seq: number;
  changes: number;
}

export class RouteSource {
  readonly counters: RouteCounters = {
    received: 0, forged: 0, enobufs: 0, changes: 0, resyncs: 0,
    malformed: Object.fromEntries([...ROUTE_REJECT_REASONS, 'truncated'].map((r) => [r, 0])) as RouteCounters['malformed'],
  };
  readonly socket: KernelSocket;
  readonly states = new LinkStates();
  #handlers: RouteSourceHandlers;
  #dump: Dump | undefined;
  #resyncWanted = false;
  #reportSnapshot = false;
  #overflowReports = 0;
  #seq = 0;

  constructor(handlers: RouteSourceHandlers, receiveBufferBytes = DEFAULT_ROUTE_RECEIVE_BUFFER_BYTES) {
    this.#handlers = handlers;
    this.socket = new KernelSocket(
      {
        onDatagram: (bytes, senderPort, truncated) => this.#datagram(bytes, senderPort, truncated),
        onOverflow: (reports) => this.#overflow(reports),
        onError: (error) => handlers.onError?.(error),
        room: handlers.room,
      },
      receiveBufferBytes,
      ROUTE_GROUPS,
      NETLINK_ROUTE,
    );
  }

  /** True while a dump (the snapshot or a resync) is under way. */
  get dumping(): boolean {
    return this.#dump !== undefined;
  }

  /**
   * Starts reading and dumps the present links and addresses: reported (as `coldplug`) when
   * `report`, else only learned, so later changes are told from it.
   */
  start(report: boolean): void {
    this.#reportSnapshot = report;
    this.socket.resume();
    this.#startDump('snapshot');
  }

  close(): void {
    this.socket.close();
  }

  #startDump(purpose: Dump['purpose']): void {
    this.#dump = { purpose, phase: 'links', seq: this.#nextSeq(), changes: 0 };
    if (purpose === 'resync') this.states.beginSweep();
    this.socket.send(dumpRequest(RTM_GETLINK, this.#dump.seq), 0);
  }

  #nextSeq(): number {
    this.#seq = (this.#seq % 0x7fffffff) + 1;
    return this.#seq;
  }

  #overflow(reports: number): void {
    this.counters.enobufs += reports;
    this.#overflowReports += reports;
    this.#handlers.onOverflow?.(reports);
    // A dump under way may have missed notifications too: another follows it.
    if (this.#dump === undefined) this.#startDump('resync');
    else this.#resyncWanted = true;
  }

  #datagram(bytes: Buffer, senderPort: number, truncated: boolean): void {
    this.counters.received++;
    if (senderPort !== 0) {
      this.counters.forged++;
      this.#handlers.onReject?.({ reason: 'forged', detail: `sender port ${senderPort} is not the kernel`, senderPort });
      return;
    }
    if (truncated) {
      this.counters.malformed.truncated++;
      this.#handlers.onReject?.({ reason: 'truncated', detail: 'the datagram did not fit the read buffer', senderPort });
      return;
    }
    const parsed = parseRouteDatagram(bytes);
    for (const message of parsed.messages) this.#message(message);
    if (parsed.rejection) {
      this.counters.malformed[parsed.rejection.reason]++;
      this.#handlers.onReject?.({ ...parsed.rejection, senderPort });
    }
  }

  #message(m: RouteMessage): void {
    const dump = this.#dump;
    const ours = dump !== undefined && m.port === this.socket.port && m.seq === dump.seq ? dump : undefined;
    if (m.kind === 'link' || m.kind === 'address') {
      if (ours === undefined) {
        this.#report(this.states.apply(m, 'carrier'), 'rtnetlink');
        return;
      }
      const changes = this.states.apply(m, ours.purpose === 'snapshot' ? 'state' : 'carrier');
      ours.changes += changes.length;
      if (ours.purpose === 'resync') this.#report(changes, 'resync');
      else if (this.#reportSnapshot) this.#report(changes, 'coldplug');
      return;
    }
    if (ours === undefined) return;
    if (m.kind === 'error' && m.errno) this.#handlers.onError?.(new Error(`The kernel refused a ${ours.phase} dump: errno ${m.errno}`));
    if (m.kind === 'done' && ours.phase === 'links') {
      ours.phase = 'addresses';
      ours.seq = this.#nextSeq();
      this.socket.send(dumpRequest(RTM_GETADDR, ours.seq), 0);
      return;
    }
    this.#endDump(ours);
  }

  #endDump(dump: Dump): void {
    this.#dump = undefined;
    if (dump.purpose === 'resync') {
      const gone = this.states.endSweep();
      this.#report(gone, 'resync');
      this.counters.resyncs++;
      const reports = this.#overflowReports;
      this.#overflowReports = 0;
      this.#handlers.onResynced?.(dump.changes + gone.length, reports);
    }
    if (this.#resyncWanted) {
      this.#resyncWanted = false;
      this.#startDump('resync');
    }
  }

  #report(changes: LinkChange[], source: LinkSource): void {
    for (const change of changes) {
      this.counters.changes++;
      this.#handlers.onChange(change, source);
    }
  }
}
