// A loaded, immutable set of rules with an index by action and subsystem, so an event
// meets only the rules that can match it, in file order.
import type { Condition, Rule } from './model.js';

/** One rule file that takes part in the set (after directory overrides). */
export interface RuleFile {
  path: string;
  /** Files with the same name in lower-priority directories that this one overrides. */
  overrides: string[];
  /** Masked: an empty file or a link to /dev/null that hides lower files of that name. */
  masked: boolean;
  rules: number;
}

/** A rule prepared for evaluation: the tests the index does not already guarantee. */
export interface IndexedRule {
  rule: Rule;
  /** Its place in the set: rules always apply in this order. */
  position: number;
  checks: readonly Condition[];
  /** It has udev's PROGRAM or IMPORT tests, which run programs while rules are matched. */
  effectful: boolean;
  /** udev's GOTO: the position of the LABEL rule evaluation resumes at after this rule matched. */
  gotoPosition: number | undefined;
}

/**
 * The rules an event of one action and subsystem can meet. Rules that need an ancestor
 * with an exact attribute value (a vendor id, say) are filed under that value, so a
 * thousand per-product rules cost one attribute read per event, not a thousand parent walks.
 */
export interface Candidates {
  always: readonly IndexedRule[];
  /** attribute name → value → rules, looked at only when the device or an ancestor has it. */
  byAncestorAttr: ReadonlyMap<string, ReadonlyMap<string, readonly IndexedRule[]>>;
}

// Tests of action and subsystem with exact values are what the index selects on.
function isImpliedByIndex(condition: Condition): boolean {
  return condition.kind === 'field' && (condition.field === 'action' || condition.field === 'subsystem') && condition.matcher.exactValues !== undefined;
}

/** The first exact-valued attribute test of the rule's `parent` conditions: a necessary condition. */
function ancestorAttrKey(rule: Rule): { attr: string; values: readonly string[] } | undefined {
  for (const condition of rule.conditions) {
    if (condition.kind !== 'parent') continue;
    for (const c of condition.conditions) {
      if (c.kind === 'attr' && c.matcher.exactValues !== undefined) return { attr: c.name, values: c.matcher.exactValues };
    }
  }
  return undefined;
}

function buildCandidates(rules: readonly IndexedRule[]): Candidates {
  const always: IndexedRule[] = [];
  const byAncestorAttr = new Map<string, Map<string, IndexedRule[]>>();
  for (const indexed of rules) {
    const key = ancestorAttrKey(indexed.rule);
    if (key === undefined) {
      always.push(indexed);
      continue;
    }
    let byValue = byAncestorAttr.get(key.attr);
    if (byValue === undefined) byAncestorAttr.set(key.attr, (byValue = new Map()));
    for (const value of key.values) {
      const list = byValue.get(value);
      if (list) list.push(indexed);
      else byValue.set(value, [indexed]);
    }
  }
  return { always, byAncestorAttr };
}

// A GOTO jumps forward to the first rule of the same file with that LABEL.
function resolveGotos(rules: readonly Rule[]): Map<number, number> {
  const gotos = new Map<number, number>();
  rules.forEach((rule, position) => {
    if (rule.goto === undefined) return;
    for (let target = position + 1; target < rules.length && (rules[target] as Rule).at.file === rule.at.file; target++) {
      if ((rules[target] as Rule).label === rule.goto) {
        gotos.set(position, target);
        return;
      }
    }
  });
  return gotos;
}

// Pairs of (action, subsystem) are few (the kernel's actions × this machine's
// subsystems); the cap only guards against something unexpected.
const MAX_INDEX_ENTRIES = 4096;

export class RuleSet {
  readonly rules: readonly Rule[];
  readonly files: readonly RuleFile[];
  readonly loadedAt: number;
  /** Some rule has a `debounce`: only then are events tracked for it (daemon/debounce.ts). */
  readonly debounced: boolean;
  /** Every rule with all its tests, for traces that explain every rule (dry runs). */
  readonly unindexed: readonly IndexedRule[];
  #indexed: readonly IndexedRule[];
  #index = new Map<string, Candidates>();

  constructor(rules: readonly Rule[], files: readonly RuleFile[] = [], loadedAt = Date.now()) {
    this.rules = rules;
    this.files = files;
    this.loadedAt = loadedAt;
    this.debounced = rules.some((rule) => rule.debounceMs !== undefined);
    const gotos = resolveGotos(rules);
    const prepare = (rule: Rule, position: number, checks: readonly Condition[]): IndexedRule => ({
      rule,
      position,
      checks,
      effectful: checks.some((c) => c.kind === 'import'),
      gotoPosition: gotos.get(position),
    });
    this.#indexed = rules.map((rule, position) => prepare(rule, position, rule.conditions.filter((c) => !isImpliedByIndex(c))));
    this.unindexed = rules.map((rule, position) => prepare(rule, position, rule.conditions));
  }

  /** The rules that can match an event with this action and subsystem. */
  candidates(action: string, subsystem: string): Candidates {
    const key = `${action}\0${subsystem}`;
    let candidates = this.#index.get(key);
    if (candidates === undefined) {
      candidates = buildCandidates(
        this.#indexed.filter(
          ({ rule }) => (rule.actions === undefined || rule.actions.has(action)) && (rule.subsystems === undefined || rule.subsystems.has(subsystem)),
        ),
      );
      if (this.#index.size >= MAX_INDEX_ENTRIES) this.#index.clear();
      this.#index.set(key, candidates);
    }
    return candidates;
  }
}

/** The rules to look at, in order, given the values each indexed attribute has on the device and its ancestors. */
export function selectRules(candidates: Candidates, ancestorValues: (attr: string) => readonly string[]): readonly IndexedRule[] {
  if (candidates.byAncestorAttr.size === 0) return candidates.always;
  let extra: Set<IndexedRule> | undefined;
  for (const [attr, byValue] of candidates.byAncestorAttr) {
    for (const value of ancestorValues(attr)) {
      const rules = byValue.get(value);
      if (rules) for (const rule of rules) (extra ??= new Set()).add(rule);
    }
  }
  if (extra === undefined) return candidates.always;
  return [...candidates.always, ...extra].sort((a, b) => a.position - b.position);
}

/** The exact values a rule's field can take, when every test of that field lists only exact values. */
export function exactValuesOf(conditions: Condition[], field: 'action' | 'subsystem'): ReadonlySet<string> | undefined {
  let values: Set<string> | undefined;
  for (const c of conditions) {
    if (c.kind !== 'field' || c.field !== field || c.matcher.exactValues === undefined) continue;
    const these = new Set(c.matcher.exactValues);
    values = values === undefined ? these : new Set([...values].filter((v) => these.has(v)));
  }
  return values;
}
