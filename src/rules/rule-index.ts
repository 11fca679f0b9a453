// The index that lets an event meet only the rules that can match it. Every rule is filed
// under at most one key, a necessary condition of the rule that one lookup decides:
//  - an exact attribute value some ancestor must have (`parent: { attrs: { idVendor: … } }`);
//  - an exact property value, when no earlier rule can have changed that property (no rule
//    before it sets it and no import before it, which may set anything);
//  - the first character of the kernel name (`KERNEL=="ttyUSB*"`), which no rule can change.
// Rules with none of these are tested for every event of their action and subsystem.
import type { Condition, Rule } from './model.js';

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
  /** The necessary condition it is filed under, if it has one the index can use. */
  key: IndexKey | undefined;
}

export type IndexSource = 'ancestor-attr' | 'property' | 'kernel-initial';

/** A necessary condition: what the event must show under `source`/`name` is one of `values`. */
export interface IndexKey {
  source: IndexSource;
  name: string;
  values: readonly string[];
}

/** The rules an event of one action and subsystem can meet. */
export interface Candidates {
  /** Rules without a key, in order. */
  always: readonly IndexedRule[];
  /** Keyed rules: source and name → value → rules, in order. */
  keyed: readonly KeyedRules[];
}

export interface KeyedRules {
  source: IndexSource;
  name: string;
  byValue: ReadonlyMap<string, readonly IndexedRule[]>;
}

/** What an event shows under a source and name (all its ancestors' values, for attributes). */
export type IndexLookup = (source: IndexSource, name: string) => readonly string[];

/**
 * Where each property can first have changed: the position of the first rule that sets it,
 * and of the first rule with an import (imports may set any property). A condition on a
 * property at position p sees the event's own value when p comes before both.
 */
export class PropertyChanges {
  readonly #firstSetter = new Map<string, number>();
  #firstImport = Infinity;

  constructor(rules: readonly Rule[]) {
    rules.forEach((rule, position) => {
      // An import among a rule's conditions changes what its later conditions see (chooseKey
      // stops there) and what every later rule sees.
      if (rule.conditions.some((c) => c.kind === 'import')) this.#firstImport = Math.min(this.#firstImport, position + 1);
      for (const a of rule.assignments) {
        // Assignments apply after the rule's conditions: they change what later rules see.
        if (a.kind === 'import') this.#firstImport = Math.min(this.#firstImport, position + 1);
        if (a.kind === 'env' && !this.#firstSetter.has(a.name)) this.#firstSetter.set(a.name, position + 1);
      }
    });
  }

  /** True when the rule at this position sees the event's own value of the property. */
  unchangedAt(name: string, position: number): boolean {
    return position < this.#firstImport && position < (this.#firstSetter.get(name) ?? Infinity);
  }
}

function hasUsableValues(values: readonly string[] | undefined): values is readonly string[] {
  // An empty pattern also matches an absent property: such a rule cannot be filed by value.
  return values !== undefined && values.length > 0 && !values.includes('');
}

/** The key a rule is filed under, in order of preference; undefined when it has none. */
export function chooseKey(checks: readonly Condition[], position: number, changes: PropertyChanges): IndexKey | undefined {
  for (const c of checks) {
    if (c.kind !== 'parent') continue;
    for (const p of c.conditions) {
      // The event shows attribute values with trailing whitespace removed (EventState.ancestorValues):
      // a value that ends in whitespace would never be found there.
      if (p.kind === 'attr' && p.matcher.exactValues !== undefined && !p.matcher.exactValues.some((v) => /\s$/.test(v))) {
        return { source: 'ancestor-attr', name: p.name, values: p.matcher.exactValues };
      }
    }
  }
  for (const c of checks) {
    // An import before this condition in the same rule may set the property.
    if (c.kind === 'import') break;
    if (c.kind === 'env' && !(c.devname === 'devnode' && c.name === 'DEVNAME') && hasUsableValues(c.matcher.exactValues) && changes.unchangedAt(c.name, position)) {
      return { source: 'property', name: c.name, values: c.matcher.exactValues };
    }
  }
  for (const c of checks) {
    if (c.kind === 'field' && c.field === 'kernel' && c.matcher.initials !== undefined) return { source: 'kernel-initial', name: '', values: c.matcher.initials };
  }
  return undefined;
}

export function buildCandidates(rules: readonly IndexedRule[]): Candidates {
  const always: IndexedRule[] = [];
  const keyed = new Map<string, { source: IndexSource; name: string; byValue: Map<string, IndexedRule[]> }>();
  for (const indexed of rules) {
    const key = indexed.key;
    if (key === undefined) {
      always.push(indexed);
      continue;
    }
    const id = `${key.source}\0${key.name}`;
    let entry = keyed.get(id);
    if (entry === undefined) keyed.set(id, (entry = { source: key.source, name: key.name, byValue: new Map() }));
    for (const value of key.values) {
      const list = entry.byValue.get(value);
      if (list) list.push(indexed);
      else entry.byValue.set(value, [indexed]);
    }
  }
  return { always, keyed: [...keyed.values()] };
}

/** The rules to look at, in order: the unkeyed ones and those filed under what the event shows. */
export function selectRules(candidates: Candidates, lookup: IndexLookup): readonly IndexedRule[] {
  let extra: IndexedRule[] | undefined;
  let lists = 0;
  for (const { source, name, byValue } of candidates.keyed) {
    for (const value of lookup(source, name)) {
      const rules = byValue.get(value);
      if (rules === undefined) continue;
      extra = extra === undefined ? [...rules] : extra.concat(rules);
      lists++;
    }
  }
  if (extra === undefined) return candidates.always;
  // Only the few keyed rules are sorted (and, from several lists, deduplicated: a rule filed
  // under two values two ancestors have); the unkeyed ones are merged in, already in order.
  if (lists > 1) extra = [...new Set(extra)].sort((a, b) => a.position - b.position);
  return mergeByPosition(candidates.always, extra);
}

function mergeByPosition(a: readonly IndexedRule[], b: readonly IndexedRule[]): IndexedRule[] {
  const out: IndexedRule[] = new Array(a.length + b.length);
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < a.length && j < b.length) out[k++] = (a[i] as IndexedRule).position < (b[j] as IndexedRule).position ? (a[i++] as IndexedRule) : (b[j++] as IndexedRule);
  while (i < a.length) out[k++] = a[i++] as IndexedRule;
  while (j < b.length) out[k++] = b[j++] as IndexedRule;
  return out;
}
