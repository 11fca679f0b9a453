// The publishing stage: one processed outcome, handed as it is to everyone who follows
// events: per-rule metrics, control-socket subscribers (the record built once), the
// libudev broadcast and the waiters. Later results (jobs, units) go to metrics and to
// subscribers that asked for them. A failing listener is logged and never stops the others.
import { describeError } from '../errors.js';
import { processedRecord, type ProcessedRecord } from '../history/store.js';
import type { Logger } from '../log.js';
import { isLinkEvent } from '../uevent/event.js';
import type { Broadcaster } from './broadcaster.js';
import type { RuleMetrics } from './metrics.js';
import type { LaterResult } from './recorder.js';
import type { SubscriberHub } from './subscribers.js';
import type { DeviceWaiters } from './waiters.js';
import type { Outcome } from './worker.js';

export interface PublisherParts {
  metrics: RuleMetrics;
  subscribers: SubscriberHub;
  waiters: DeviceWaiters;
  /** The libudev broadcast, once the daemon opened it (none in a dry run or with --no-broadcast). */
  broadcaster: () => Broadcaster | undefined;
  log: Logger;
}

export class Publisher {
  #p: PublisherParts;
  #published = 0;

  constructor(parts: PublisherParts) {
    this.#p = parts;
  }

  stats() {
    return { published: this.#published, subscribers: this.#p.subscribers.size, subscribersDropped: this.#p.subscribers.dropped, subscriberBytesHeld: this.#p.subscribers.heldBytes, broadcastFailures: this.#p.broadcaster()?.failures ?? 0 };
  }

  publish(outcome: Outcome): void {
    this.#published++;
    const plan = outcome.evaluation?.plan;
    this.#each('metrics', () => this.#p.metrics.observe(outcome.rules, outcome.actions));
    if (this.#p.subscribers.size > 0) this.#each('subscribers', () => this.#p.subscribers.publish(this.#record(outcome)));
    // libudev listeners expect uevents on their groups: link events are not passed on.
    if (!isLinkEvent(outcome.event)) this.#each('broadcast', () => this.#p.broadcaster()?.send(outcome.event, plan));
    this.#each('waiters', () => this.#p.waiters.check());
  }

  publishLater(later: LaterResult): void {
    this.#each('metrics', () => this.#p.metrics.observeAction(later.result));
    if (this.#p.subscribers.size === 0) return;
    const { event, eventId, result } = later;
    const record = this.#record({ id: eventId, event, evaluation: undefined, rules: [], actions: [] });
    this.#each('subscribers', () => this.#p.subscribers.publishResult({ event_id: eventId, devpath: event.devpath, subsystem: event.subsystem, result }, record));
  }

  #record(outcome: Outcome): ProcessedRecord {
    return processedRecord(outcome.id, outcome.event, outcome.evaluation?.plan, outcome.rules);
  }

  #each(listener: string, call: () => void): void {
    try {
      call();
    } catch (error) {
      this.#p.log.warn({ err: error, listener }, `Failed to publish an event to ${listener}: ${describeError(error)}`);
    }
  }
}
