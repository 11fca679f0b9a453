// The recording stage: an outcome becomes a history row (with its physical device, the
// rules that matched and each action's result) and log lines for failed actions. Results
// that come later (supervised jobs, units) are recorded against their event's id.
import type { ActionResult } from '../actions/results.js';
import { describeError } from '../errors.js';
import type { DeviceIdentities } from '../history/devices.js';
import type { Incident } from '../history/records.js';
import type { HistoryWriter } from '../history/writer.js';
import type { Logger } from '../log.js';
import type { Uevent } from '../uevent/event.js';
import { eventLogger, type Outcome } from './worker.js';

/** A result that arrives after its event was recorded and published (a job ended, a unit started). */
export interface LaterResult {
  eventId: number;
  event: Uevent;
  result: ActionResult;
}

export interface RecorderParts {
  writer: HistoryWriter;
  identities: DeviceIdentities;
  log: Logger;
  /** False once the database is closed: late results are then only logged. */
  canRecord: () => boolean;
}

export class Recorder {
  #p: RecorderParts;
  #events = 0;
  #actionsFailed = 0;

  constructor(parts: RecorderParts) {
    this.#p = parts;
  }

  stats() {
    return { eventsRecorded: this.#events, actionsFailed: this.#actionsFailed };
  }

  /** Records the outcome and gives it its history id (0 when it cannot be recorded). */
  record(outcome: Outcome): void {
    const { event } = outcome;
    if (this.#p.canRecord()) {
      try {
        const note = outcome.failure === undefined ? outcome.skipped : `rules not evaluated: ${outcome.failure}`;
        outcome.id = this.#p.writer.recordEvent(event, { plan: outcome.evaluation?.plan, rules: outcome.rules, device: this.#identity(event), ...(note ? { note } : {}) });
        this.#events++;
      } catch (error) {
        eventLogger(this.#p.log, event).error({ err: error }, `Failed to record event: ${describeError(error)}`);
      }
    }
    for (const result of outcome.actions) this.#action(event, outcome.id, result);
  }

  recordLater(later: LaterResult): void {
    this.#action(later.event, later.eventId, later.result);
  }

  /** An incident (an overflow, a SEQNUM gap, ...): recorded in the history's incidents. */
  recordIncident(incident: Incident): void {
    if (this.#p.canRecord()) this.#p.writer.recordIncident(incident);
  }

  /** An event left queued when the daemon stopped: recorded, marked as not processed. */
  recordUnprocessed(event: Uevent): void {
    this.#p.writer.recordEvent(event, { note: 'not processed: the daemon stopped first', device: this.#identity(event) });
    this.#events++;
  }

  // The physical device is read from sysfs; when that fails the event is still recorded, without it.
  #identity(event: Uevent) {
    try {
      return this.#p.identities.of(event);
    } catch (error) {
      eventLogger(this.#p.log, event).error({ err: error }, `Failed to identify the event's physical device: ${describeError(error)}`);
      return undefined;
    }
  }

  #action(event: Uevent, eventId: number, result: ActionResult): void {
    const log = this.#p.log;
    if (result.kind === 'debounce') {
      // A debounced rule acting later or cancelled is not a failure.
      eventLogger(log, event).info({ rule: result.rule, debounce: result.target, error: result.error }, result.ok ? 'Debounced rule: the state held, it acts' : `Debounced rule ${result.error}`);
    } else if (!result.ok) {
      this.#actionsFailed++;
      eventLogger(log, event).warn({ kind: result.kind, target: result.target, rule: result.rule, error: result.error }, `Failed to apply ${result.kind} ${result.target}: ${result.error}`);
    } else if (log.isLevelEnabled('debug')) {
      eventLogger(log, event).debug({ kind: result.kind, target: result.target, rule: result.rule, durationMs: result.durationMs }, 'Action done');
    }
    if (eventId > 0 && this.#p.canRecord()) this.#p.writer.recordAction(eventId, result);
  }
}
