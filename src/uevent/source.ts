// Kernel datagrams → trusted, parsed Uevents, with every drop counted by its reason.
import { KernelSocket, DEFAULT_RECEIVE_BUFFER_BYTES } from '../os/netlink.js';
import { parseUevent, REJECT_REASONS, type RejectReason } from './parse.js';
import type { Uevent } from './event.js';

export interface SourceCounters {
  /** Datagrams read from the socket, whatever their fate. */
  received: number;
  /** Datagrams whose sender was not the kernel (port id other than 0). */
  forged: number;
  /** Datagrams from the kernel port that failed to parse, by reason. */
  malformed: Record<RejectReason, number>;
  /** ENOBUFS reports: the kernel dropped events because our buffer was full. */
  enobufs: number;
  accepted: number;
}

export interface Rejection {
  reason: RejectReason | 'forged';
  detail: string;
  senderPort: number;
}

export interface KernelSourceHandlers {
  onEvent(event: Uevent): void;
  onReject?(rejection: Rejection): void;
  onOverflow?(reports: number): void;
  onError?(error: Error): void;
  /** How many events the consumer can take now (see DatagramHandlers.room). */
  room?(): number;
}

export function createSourceCounters(): SourceCounters {
  const malformed = Object.fromEntries(REJECT_REASONS.map((reason) => [reason, 0])) as Record<RejectReason, number>;
  return { received: 0, forged: 0, malformed, enobufs: 0, accepted: 0 };
}

/** Total malformed datagrams over all reasons (of either socket). */
export function countMalformed(counters: { malformed: Readonly<Record<string, number>> }): number {
  return Object.values(counters.malformed).reduce((sum, n) => sum + n, 0);
}

/** The kernel uevent stream: only the kernel (sender port 0) is trusted. */
export class KernelUeventSource {
  readonly counters = createSourceCounters();
  readonly socket: KernelSocket;

  constructor(handlers: KernelSourceHandlers, receiveBufferBytes = DEFAULT_RECEIVE_BUFFER_BYTES) {
    const counters = this.counters;
    this.socket = new KernelSocket(
      {
        onDatagram(bytes, senderPort, truncated) {
          counters.received++;
          if (senderPort !== 0) {
            counters.forged++;
            handlers.onReject?.({ reason: 'forged', detail: `sender port ${senderPort} is not the kernel`, senderPort });
            return;
          }
          if (truncated) {
            counters.malformed.truncated++;
            handlers.onReject?.({ reason: 'truncated', detail: 'the datagram did not fit the read buffer', senderPort });
            return;
          }
          const result = parseUevent(bytes, Date.now());
          if (!result.ok) {
            counters.malformed[result.reason]++;
            handlers.onReject?.({ reason: result.reason, detail: result.detail, senderPort });
            return;
          }
          counters.accepted++;
          handlers.onEvent(result.event);
        },
        onOverflow(reports) {
          counters.enobufs += reports;
          handlers.onOverflow?.(reports);
        },
        onError(error) {
          handlers.onError?.(error);
        },
        room: handlers.room,
      },
      receiveBufferBytes,
    );
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  close(): void {
    this.socket.close();
  }
}
