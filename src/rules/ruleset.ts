// A loaded, immutable set of rules with an index by action and subsystem, so an event
// meets only the rules that can match it, in file order.
import type { Condition, Rule } from './model.js';
import { buildCandidates, chooseKey, PropertyChanges, type Candidates, type IndexedRule } from './rule-index.js';

export { selectRules, type Candidates, type IndexedRule, type IndexLookup } from './rule-index.js';

/** One rule file that takes part in the set (after directory overrides). */
export interface RuleFile {
  path: string;
  /** Files with the same name in lower-priority directories that this one overrides. */
  overrides: string[];
  /** Masked: an empty file or a link to /dev/null that hides lower files of that name. */
  masked: boolean;
  rules: number;
  /** Left out (`beside-udev: step-aside`): udev's own rules are loaded and compute the same. */
  steppedAside?: boolean;
}

// Tests of action and subsystem with exact values are what the index selects on.
function isImpliedByIndex(condition: Condition): boolean {
  return condition.kind === 'field' && (condition.field === 'action' || condition.field === 'subsystem') && condition.matcher.exactValues !== undefined;
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

// A rule that tests only action and subsystem and jumps (`SUBSYSTEM!="input", GOTO="end"`, how
// udev's files guard their blocks) is decided by the pair alone: where it matches, the rules it
// jumps over cannot run for that pair and are no candidates. Unless an earlier jump that may
// happen lands between the guard and its label: those rules would run then.
type FieldTest = Extract<Condition, { kind: 'field' }>;

/** A rule's tests of the event's action and subsystem: decided by the pair alone. */
function pairTests(rule: Rule): FieldTest[] {
  return rule.conditions.filter((c): c is FieldTest => c.kind === 'field' && (c.field === 'action' || c.field === 'subsystem'));
}

function passes(tests: readonly FieldTest[], action: string, subsystem: string): boolean {
  return tests.every((c) => c.matcher.test(c.field === 'action' ? action : subsystem));
}

interface Jump {
  position: number;
  gotoPosition: number;
  /** Its tests when all of them are of action and subsystem (and nothing else decides whether it runs). */
  tests: readonly FieldTest[] | undefined;
}

function findJumps(rules: readonly Rule[], gotos: ReadonlyMap<number, number>): Jump[] {
  return [...gotos].sort((a, b) => a[0] - b[0]).map(([position, gotoPosition]) => {
    const rule = rules[position] as Rule;
    const tests = pairTests(rule);
    const decided = tests.length === rule.conditions.length && !rule.stop && rule.appliesTo === undefined && rule.debounceMs === undefined;
    return { position, gotoPosition, tests: decided ? tests : undefined };
  });
}

/**
 * False when the rule can do nothing for an event with this action and subsystem: a test of
 * one of them fails (`ACTION!="add|change"` for a remove; the exact values the index knows),
 * or its effects cannot apply (a LABEL alone; a node-only rule on remove: udev's line mask).
 * A rule with an import program stays: its program runs before a later test fails it.
 */
function canRun({ rule, effectful }: IndexedRule, action: string, subsystem: string): boolean {
  if ((rule.actions !== undefined && !rule.actions.has(action)) || (rule.subsystems !== undefined && !rule.subsystems.has(subsystem))) return false;
  if (rule.appliesTo !== undefined && (rule.appliesTo.size === 0 || action === 'remove')) return false;
  return effectful || passes(pairTests(rule), action, subsystem);
}

/** The positions no event with this action and subsystem can reach: jumped over by a guard that always jumps. */
function guardedPositions(jumps: readonly Jump[], action: string, subsystem: string): Set<number> {
  const skipped = new Set<number>();
  const mayJump: Jump[] = [];
  for (const j of jumps) {
    if (skipped.has(j.position)) continue; // never runs for this pair
    const matches = j.tests === undefined ? undefined : passes(j.tests, action, subsystem);
    if (matches === false) continue; // never jumps for this pair
    if (matches === true && !mayJump.some((m) => m.position < j.position && m.gotoPosition > j.position && m.gotoPosition < j.gotoPosition)) {
      for (let p = j.position + 1; p < j.gotoPosition; p++) skipped.add(p);
    }
    mayJump.push(j);
  }
  return skipped;
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
  #jumps: readonly Jump[];
  #index = new Map<string, Candidates>();

  constructor(rules: readonly Rule[], files: readonly RuleFile[] = [], loadedAt = Date.now()) {
    this.rules = rules;
    this.files = files;
    this.loadedAt = loadedAt;
    this.debounced = rules.some((rule) => rule.debounceMs !== undefined);
    const gotos = resolveGotos(rules);
    const changes = new PropertyChanges(rules);
    const prepare = (rule: Rule, position: number, checks: readonly Condition[], keyed: boolean): IndexedRule => ({
      rule,
      position,
      checks,
      effectful: checks.some((c) => c.kind === 'import'),
      gotoPosition: gotos.get(position),
      key: keyed ? chooseKey(checks, position, changes) : undefined,
    });
    this.#indexed = rules.map((rule, position) => prepare(rule, position, rule.conditions.filter((c) => !isImpliedByIndex(c)), true));
    this.unindexed = rules.map((rule, position) => prepare(rule, position, rule.conditions, false));
    this.#jumps = findJumps(rules, gotos);
  }

  /** The rules that can match an event with this action and subsystem. */
  candidates(action: string, subsystem: string): Candidates {
    const key = `${action}\0${subsystem}`;
    let candidates = this.#index.get(key);
    if (candidates === undefined) {
      const skipped = guardedPositions(this.#jumps, action, subsystem);
      candidates = buildCandidates(this.#indexed.filter((indexed) => !skipped.has(indexed.position) && canRun(indexed, action, subsystem)));
      if (this.#index.size >= MAX_INDEX_ENTRIES) this.#index.clear();
      this.#index.set(key, candidates);
    }
    return candidates;
  }
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
