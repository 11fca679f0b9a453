// YAML's rule-level `debounce: DURATION` (ifplugd's -u/-d): a rule that matched acts only
// once the state it matched has held that long. The event is recorded and acted on at once
// by its other rules; its debounced rules wait. If a newer event of the same kind comes for
// the device first (a link-down after a link-up, the address removed again, the device
// removed), they are cancelled, and that is recorded with the event. If not, the event
// goes through the queue again as a turn of its own (source `debounce`), where only those
// rules act; it has its own history row, and the original event records that it fired.
import type { ActionResult } from '../actions/results.js';
import type { Logger } from '../log.js';
import { createProperties, isLinkEvent, type Uevent } from '../uevent/event.js';
import type { LaterResult } from './recorder.js';
import type { Outcome } from './worker.js';

interface Pending {
  key: string;
  eventId: number;
  event: Uevent;
  debounceMs: number;
  rules: string[];
  timer: NodeJS.Timeout;
}

/** What must stay the same for a debounced rule to act: the link, one address, or the device itself. */
function stateKey(event: Uevent): string {
  if (!isLinkEvent(event)) return 'device';
  if (event.action === 'link-up' || event.action === 'link-down') return 'link';
  return `address ${event.properties.IP_ADDRESS ?? ''}/${event.properties.PREFIX_LENGTH ?? ''}`;
}

export interface DebouncerParts {
  /** True while the rules in use have a `debounce`: otherwise events are not tracked (a storm pays nothing). */
  active(): boolean;
  push(event: Uevent): void;
  report(later: LaterResult): void;
  log: Logger;
}

export class Debouncer {
  /** Debounced rules that acted, and those cancelled by a newer event. */
  fired = 0;
  cancelled = 0;
  #p: DebouncerParts;
  // Per device, per state key: how many events of that kind have come (at intake).
  #generations = new Map<string, Map<string, number>>();
  #seen = new WeakMap<Uevent, number>();
  #pending = new Map<string, Set<Pending>>();

  constructor(parts: DebouncerParts) {
    this.#p = parts;
  }

  /** At intake, before the event is queued: it supersedes what waits on an older state. */
  observe(event: Uevent): void {
    if (event.source === 'debounce' || (this.#pending.size === 0 && !this.#p.active())) return;
    const key = stateKey(event);
    let generations = this.#generations.get(event.devpath);
    if (generations === undefined) this.#generations.set(event.devpath, (generations = new Map()));
    const generation = (generations.get(key) ?? 0) + 1;
    generations.set(key, generation);
    this.#seen.set(event, generation);
    const waiting = this.#pending.get(event.devpath);
    for (const pending of waiting ?? []) {
      if (pending.key === key || event.action === 'remove') this.#cancel(pending, `${event.action} came after ${Date.now() - pending.event.receivedAt} ms`);
    }
    if (event.action === 'remove') this.#generations.delete(event.devpath);
  }

  /** After the event was recorded: its debounced rules wait their time, one timer per duration. */
  schedule({ id, event, evaluation }: Outcome): void {
    const deferred = evaluation?.plan.deferred ?? [];
    if (deferred.length === 0 || event.source === 'debounce') return;
    const key = stateKey(event);
    const superseded = this.#seen.get(event) !== this.#generations.get(event.devpath)?.get(key);
    for (const debounceMs of new Set(deferred.map((d) => d.debounceMs))) {
      const rules = deferred.filter((d) => d.debounceMs === debounceMs).map((d) => d.rule);
      // The time runs from when the kernel told us, not from when the event's turn came.
      const delay = Math.max(0, event.receivedAt + debounceMs - Date.now());
      const pending: Pending = { key, eventId: id, event, debounceMs, rules, timer: setTimeout(() => this.#fire(pending), delay) };
      pending.timer.unref();
      let waiting = this.#pending.get(event.devpath);
      if (waiting === undefined) this.#pending.set(event.devpath, (waiting = new Set()));
      waiting.add(pending);
      if (superseded) this.#cancel(pending, 'a newer event came while it was queued');
    }
  }

  /** Debounced rules waiting now. */
  get waiting(): number {
    let count = 0;
    for (const set of this.#pending.values()) count += set.size;
    return count;
  }

  close(): void {
    for (const set of this.#pending.values()) for (const pending of set) clearTimeout(pending.timer);
    this.#pending.clear();
  }

  #remove(pending: Pending): void {
    clearTimeout(pending.timer);
    const waiting = this.#pending.get(pending.event.devpath);
    waiting?.delete(pending);
    if (waiting?.size === 0) this.#pending.delete(pending.event.devpath);
  }

  #report(pending: Pending, ok: boolean, error: string | null): void {
    for (const rule of pending.rules) {
      const result: ActionResult = { kind: 'debounce', target: `${pending.debounceMs} ms`, rule, ok, error, durationMs: Date.now() - pending.event.receivedAt };
      this.#p.report({ eventId: pending.eventId, event: pending.event, result });
    }
  }

  #cancel(pending: Pending, why: string): void {
    this.#remove(pending);
    this.cancelled += pending.rules.length;
    this.#report(pending, false, `cancelled: ${why}`);
  }

  #fire(pending: Pending): void {
    this.#remove(pending);
    this.fired += pending.rules.length;
    this.#report(pending, true, null);
    const { event } = pending;
    this.#p.push({ ...event, properties: Object.assign(createProperties(), event.properties), source: 'debounce', debounceMs: pending.debounceMs, receivedAt: Date.now() });
  }
}
