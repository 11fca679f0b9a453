// What arrives from the kernel before it is queued: SEQNUM gaps, buffer overflows (with
// a resync from sysfs once the queue is empty), and rate-limited logs of dropped datagrams.
import { describeError } from '../errors.js';
import type { Incident } from '../history/records.js';
import { LogThrottle, type Logger } from '../log.js';
import type { Uevent } from '../uevent/event.js';
import type { Rejection } from '../uevent/source.js';
import type { Sysfs } from '../uevent/sysfs.js';
import type { PresentDevices } from './present-devices.js';
import { SeqnumTracker, type SeqnumGap } from './seqnum.js';


export interface IntakeParts {
  log: Logger;
  present: PresentDevices;
  sysfs: Sysfs;
  push(event: Uevent): void;
  /** Records and publishes an incident (pipeline.ts). */
  reportIncident(incident: Incident): void;
  queued(): number;
  stopping(): boolean;
  receiveBufferBytes(): number | undefined;
  enobufs(): number | undefined;
  /** Reads what the kernel socket holds now; returns the datagrams read. */
  readNow(): number;
}

export class Intake {
  #p: IntakeParts;
  #seqnums = new SeqnumTracker();
  #overflowReports = 0;
  #overflowSinceLastGap = false;
  #resyncPending = false;
  #draining = false;
  #rejectLogs = new LogThrottle();

  constructor(parts: IntakeParts) {
    this.#p = parts;
  }

  accept(event: Uevent): void {
    const gap = this.#seqnums.observe(event.seqnum);
    if (gap) {
      // The kernel reports ENOBUFS before handing over what it had buffered, so the
      // jump shows only after those: an overflow explains the next gap, not the next event.
      this.#onGap(gap, this.#overflowSinceLastGap);
      this.#overflowSinceLastGap = false;
    }
    this.#p.push(event);
  }

  #onGap(gap: SeqnumGap, duringOverflow: boolean): void {
    // Other network namespaces' events also leave gaps; only an overflow means loss.
    this.#p.reportIncident({ kind: 'seqnum-gap', at: Date.now(), detail: { ...gap, duringOverflow } });
    if (duringOverflow) this.#p.log.warn(gap, `Missed ${gap.missed} kernel events (SEQNUM ${gap.after + 1}..${gap.before - 1})`);
    else this.#p.log.debug(gap, 'SEQNUM gap (events for other network namespaces, or lost)');
  }

  onOverflow(reports: number): void {
    this.#overflowReports += reports;
    this.#overflowSinceLastGap = true;
    if (!this.#resyncPending) {
      this.#p.log.warn(
        { receiveBufferBytes: this.#p.receiveBufferBytes(), enobufs: this.#p.enobufs() },
        'Kernel events were lost (ENOBUFS: receive buffer full); resyncing from sysfs. To avoid it, raise --receive-buffer or run as root',
      );
    }
    this.#resyncPending = true;
    // A queue that is already empty will not report idle again on its own.
    if (this.#p.queued() === 0) setImmediate(() => this.resyncIfPending());
  }

  /**
   * Rescans sysfs after lost events, once every event the kernel still holds has been read
   * and applied: ENOBUFS is reported before the datagrams buffered ahead of the loss are
   * handed over, and a rescan before those are applied would act on their devices a
   * second time (a synthetic add, then the kernel's own). Called when the queue is idle.
   */
  resyncIfPending(): void {
    if (!this.#resyncPending || this.#p.stopping() || this.#draining) return;
    this.#draining = true;
    try {
      // Events handled on the spot make the queue idle again inside readNow: #draining
      // keeps that from starting a rescan halfway.
      while (this.#p.readNow() > 0) if (this.#p.queued() > 0) return; // onIdle calls again
    } finally {
      this.#draining = false;
    }
    if (this.#p.queued() > 0) return;
    this.#resyncPending = false;
    const reports = this.#overflowReports;
    this.#overflowReports = 0;
    let events: Uevent[];
    try {
      events = this.#p.present.diff(this.#p.sysfs);
    } catch (error) {
      this.#p.log.error({ err: error }, `Failed to resync from sysfs: ${describeError(error)}`);
      return;
    }
    const added = events.filter((e) => e.action === 'add').length;
    this.#p.reportIncident({
      kind: 'overflow',
      at: Date.now(),
      detail: { enobufsReports: reports, resyncAdded: added, resyncRemoved: events.length - added },
    });
    this.#p.log.warn({ added, removed: events.length - added }, 'Resynced from sysfs after lost events');
    for (const event of events) this.#p.push(event);
  }

  logRejection(rejection: Pick<Rejection, 'detail' | 'senderPort'> & { reason: string }): void {
    // One line per reason per interval: a flood of forged datagrams must not flood the log.
    this.#rejectLogs.run(rejection.reason, (suppressedSinceLast) =>
      this.#p.log.warn({ reason: rejection.reason, senderPort: rejection.senderPort, suppressedSinceLast }, `Dropped a datagram: ${rejection.detail}`),
    );
  }
}
