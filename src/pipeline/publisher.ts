// The publishing stage: one processed outcome, handed as it is to everyone who follows
// events: per-rule metrics, control-socket subscribers (the record built once), the
// libudev broadcast and the waiters. Later results (jobs, units) go to metrics and to
// subscribers that asked for them; incidents to subscribers that asked for them. A failing listener is logged and never stops the others.
// Each listener is named here by what the pipeline needs of it, not by its module: they
// live in control/ and udev/, which the pipeline does not import.
import type { ActionResult } from '../actions/results.js';
import { describeError } from '../errors.js';
import { incidentLine, processedRecord, type Incident, type IncidentLine, type ProcessedRecord, type ResultRecord } from '../history/records.js';
import type { Logger } from '../log.js';
import type { Rule } from '../rules/model.js';
import { ruleLabel, type Plan } from '../rules/plan.js';
import { isLinkEvent, type Uevent } from '../uevent/event.js';
import type { LaterResult } from './recorder.js';
import type { Outcome } from './worker.js';

export interface PublisherListeners {
  /** Per-rule figures (control/metrics.ts). */
  metrics: { observe(rules: readonly Rule[], actions: readonly ActionResult[]): void; observeAction(result: ActionResult): void };
  /** Control-socket subscribers (control/subscribers.ts). */
  subscribers: {
    readonly size: number;
    readonly dropped: number;
    readonly heldBytes: number;
    publish(record: ProcessedRecord): void;
    publishResult(result: ResultRecord, event: ProcessedRecord): void;
    publishIncident(line: IncidentLine): void;
  };
  /** `hotplugd wait` (control/waiters.ts). */
  waiters: { check(): void };
  /** The libudev broadcast (udev/broadcaster.ts); none in a dry run or with --no-broadcast. */
  broadcaster?: { readonly failures: number; send(event: Uevent, plan: Plan | undefined): void } | undefined;
}

/** Until the pipeline is connected (before start), nobody listens. */
const NOBODY: PublisherListeners = {
  metrics: { observe: () => undefined, observeAction: () => undefined },
  subscribers: { size: 0, dropped: 0, heldBytes: 0, publish: () => undefined, publishResult: () => undefined, publishIncident: () => undefined },
  waiters: { check: () => undefined },
};

export class Publisher {
  #p: PublisherListeners = NOBODY;
  #log: Logger;
  #published = 0;

  constructor(log: Logger) {
    this.#log = log;
  }

  /** Hands what is published from now on to these listeners. */
  connect(listeners: PublisherListeners): void {
    this.#p = listeners;
  }

  stats() {
    return { published: this.#published, subscribers: this.#p.subscribers.size, subscribersDropped: this.#p.subscribers.dropped, subscriberBytesHeld: this.#p.subscribers.heldBytes, broadcastFailures: this.#p.broadcaster?.failures ?? 0 };
  }

  publish(outcome: Outcome): void {
    this.#published++;
    const plan = outcome.evaluation?.plan;
    this.#each('metrics', () => this.#p.metrics.observe(outcome.rules, outcome.actions));
    if (this.#p.subscribers.size > 0) this.#each('subscribers', () => this.#p.subscribers.publish(this.#record(outcome)));
    // libudev listeners expect uevents on their groups: link events are not passed on.
    if (!isLinkEvent(outcome.event)) this.#each('broadcast', () => this.#p.broadcaster?.send(outcome.event, plan));
    this.#each('waiters', () => this.#p.waiters.check());
  }

  publishLater(later: LaterResult): void {
    this.#each('metrics', () => this.#p.metrics.observeAction(later.result));
    if (this.#p.subscribers.size === 0) return;
    const { event, eventId, result } = later;
    const record = this.#record({ id: eventId, event, evaluation: undefined, rules: [], actions: [] });
    this.#each('subscribers', () => this.#p.subscribers.publishResult({ event_id: eventId, devpath: event.devpath, subsystem: event.subsystem, result }, record));
  }

  /** An incident (an overflow, a SEQNUM gap, a replaced database), as it is recorded. */
  publishIncident(incident: Incident): void {
    if (this.#p.subscribers.size > 0) this.#each('subscribers', () => this.#p.subscribers.publishIncident(incidentLine(incident)));
  }

  #record(outcome: Outcome): ProcessedRecord {
    return processedRecord(outcome.id, outcome.event, outcome.evaluation?.plan, outcome.rules.map(ruleLabel));
  }

  #each(listener: string, call: () => void): void {
    try {
      call();
    } catch (error) {
      this.#log.warn({ err: error, listener }, `Failed to publish an event to ${listener}: ${describeError(error)}`);
    }
  }
}
