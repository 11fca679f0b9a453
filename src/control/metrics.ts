// Per-rule figures for `hotplugd status --rules`: how many events each rule matched,
// how many of the actions it asked for failed, and the latency of those actions
// (p50/p95 over the most recent samples, so memory stays bounded); for debounced rules,
// how often they waited their time and acted, or were cancelled by a newer event.
import type { ActionResult } from '../actions/results.js';
import type { Rule } from '../rules/model.js';
import { ruleLabel } from '../rules/plan.js';

const SAMPLES_PER_RULE = 512;

interface RuleFigures {
  /** The rule as the trace names it (its own line), or the first action's origin until it matched. */
  label: string;
  matched: number;
  actions: number;
  failed: number;
  debounced: number;
  cancelled: number;
  samples: Float64Array;
  sampleCount: number;
}

export interface RuleMetricsRow {
  rule: string;
  matched: number;
  actions: number;
  failed: number;
  /** Debounced turns that acted, and those a newer event cancelled. */
  debounced: number;
  cancelled: number;
  p50Ms: number | null;
  p95Ms: number | null;
}

function percentile(sorted: Float64Array, fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))]!;
}

// One rule is its name in its file: so its figures go on across reloads that moved it. Its
// actions name it `name (file:line:column)` with the line of the key that asked.
function ruleKey(origin: string): string {
  const match = /^(.*) \((.*):\d+:\d+\)$/.exec(origin);
  return match ? `${match[1]}\0${match[2]}` : origin;
}

export class RuleMetrics {
  #rules = new Map<string, RuleFigures>();
  // Each matched rule's figures, found without making its key again per event.
  #byRule = new WeakMap<Rule, RuleFigures>();

  #figures(key: string, label: string): RuleFigures {
    let figures = this.#rules.get(key);
    if (!figures) {
      figures = { label, matched: 0, actions: 0, failed: 0, debounced: 0, cancelled: 0, samples: new Float64Array(SAMPLES_PER_RULE), sampleCount: 0 };
      this.#rules.set(key, figures);
    }
    return figures;
  }

  observe(rules: readonly Rule[], actions: readonly ActionResult[]): void {
    for (const rule of rules) {
      let figures = this.#byRule.get(rule);
      if (figures === undefined) {
        figures = this.#figures(`${rule.name}\0${rule.at.file}`, ruleLabel(rule));
        figures.label = ruleLabel(rule); // the trace names the rule by its own line
        this.#byRule.set(rule, figures);
      }
      figures.matched++;
    }
    for (const action of actions) if (action.rule !== null) this.observeAction(action);
  }

  observeAction(action: ActionResult): void {
    if (action.rule === null) return;
    const figures = this.#figures(ruleKey(action.rule), action.rule);
    if (action.kind === 'debounce') {
      // A wait, not an action: it neither fails nor has a latency of its own.
      if (action.ok) figures.debounced++;
      else figures.cancelled++;
      return;
    }
    figures.actions++;
    if (!action.ok) figures.failed++;
    figures.samples[figures.sampleCount++ % SAMPLES_PER_RULE] = action.durationMs;
  }

  /** Rules seen so far, most matched first. */
  rows(): RuleMetricsRow[] {
    const rows: RuleMetricsRow[] = [];
    for (const f of this.#rules.values()) {
      const sorted = f.samples.slice(0, Math.min(f.sampleCount, SAMPLES_PER_RULE)).sort();
      rows.push({
        rule: f.label,
        matched: f.matched,
        actions: f.actions,
        failed: f.failed,
        debounced: f.debounced,
        cancelled: f.cancelled,
        p50Ms: sorted.length ? round(percentile(sorted, 0.5)) : null,
        p95Ms: sorted.length ? round(percentile(sorted, 0.95)) : null,
      });
    }
    return rows.sort((a, b) => b.matched - a.matched || a.rule.localeCompare(b.rule));
  }
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;

/** RSS and V8's heap, in MiB with one decimal, for `status` (boards watch their memory). */
export function memoryMiB(): Record<string, number> {
  const usage = process.memoryUsage();
  const mib = (bytes: number) => Math.round(bytes / 104857.6) / 10;
  return { rss: mib(usage.rss), heapUsed: mib(usage.heapUsed), heapTotal: mib(usage.heapTotal), external: mib(usage.external) };
}
