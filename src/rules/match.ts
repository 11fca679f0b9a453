// Value matchers compiled once at load time: exact strings, fnmatch globs (with `{a,b}`
// alternatives), lists (any of) and negation. An absent value is tested as the empty
// string, so `""` matches "unset or empty" and `"!"` (or `"?*"`) matches "set to something".
import { fnmatchTester, isGlob } from '../text/fnmatch.js';

type Test = (value: string) => boolean;

/** A compiled test of one value (or a set of values, such as tags). */
export interface ValueMatcher {
  /** The patterns as written, for traces and messages. */
  readonly source: string;
  /** Exact values this matcher accepts when it accepts nothing else; used to index rules. */
  readonly exactValues: readonly string[] | undefined;
  test(value: string | undefined): boolean;
  /** True when one of the values matches (if there are positive patterns) and none matches a negation. */
  testAny(values: Iterable<string>): boolean;
  /** The positive patterns, for lint. */
  readonly positives: readonly string[];
  /**
   * The first characters a matching value can start with, when every value it accepts starts
   * with a literal character (no negation, no leading wildcard, no empty pattern); used to index rules.
   */
  readonly initials: readonly string[] | undefined;
}

// Values are matched like fnmatch(3) without FNM_PATHNAME or FNM_PERIOD, as udev does:
// `*` and `?` match any character, `/`, `.` and newlines included. Device strings are
// hostile, so a glob must never treat a value as a path (`?*` matches `/../x` too).

/**
 * Expands `{a,b}` alternatives (nested ones too) into plain fnmatch patterns, at load time.
 * A brace without a matching close or without a comma at its level is a literal character;
 * a backslash keeps the next character (and the backslash, for fnmatch) as written.
 */
export function expandBraces(pattern: string): string[] {
  let depth = 0;
  let open = -1;
  const commas: number[] = [];
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') i++;
    else if (c === '{') {
      if (depth++ === 0) open = i;
    } else if (c === ',' && depth === 1) commas.push(i);
    else if (c === '}' && depth > 0 && --depth === 0) {
      if (commas.length === 0) {
        // `{x}` is literal: keep it and expand what follows.
        return expandBraces(pattern.slice(i + 1)).map((rest) => pattern.slice(0, i + 1) + rest);
      }
      const head = pattern.slice(0, open);
      const tail = pattern.slice(i + 1);
      const bounds = [open, ...commas, i];
      const out: string[] = [];
      for (let k = 0; k + 1 < bounds.length; k++) {
        const choice = pattern.slice((bounds[k] as number) + 1, bounds[k + 1]);
        for (const expanded of expandBraces(choice + tail)) out.push(head + expanded);
      }
      return out;
    }
  }
  return [pattern];
}

// A pattern's literal first character, or undefined when it can match an empty value or start with anything.
function literalInitial(alternative: string): string | undefined {
  const first = alternative[0];
  if (first === undefined || '*?[{'.includes(first)) return undefined;
  if (first !== '\\') return first;
  return alternative.length > 1 ? alternative[1] : undefined;
}

/** The first characters values matching these fnmatch patterns can start with, when all are literal. */
export function initialsOf(positives: readonly string[], negated: boolean): string[] | undefined {
  if (negated) return undefined;
  const initials = new Set<string>();
  for (const pattern of positives) {
    for (const alternative of expandBraces(pattern)) {
      const initial = literalInitial(alternative);
      if (initial === undefined) return undefined;
      initials.add(initial);
    }
  }
  return [...initials];
}

function isPattern(pattern: string): boolean {
  return isGlob(pattern) || expandBraces(pattern).length > 1;
}

function compileAlternative(pattern: string): Test {
  if (!isGlob(pattern)) {
    const literal = pattern.replace(/\\(.)/gs, '$1');
    return (value) => value === literal;
  }
  return fnmatchTester(pattern);
}

function compilePattern(pattern: string): Test {
  return anyOf(expandBraces(pattern).map(compileAlternative));
}

function anyOf(tests: Test[]): Test {
  if (tests.length === 1) return tests[0] as Test;
  return (value) => {
    for (const test of tests) if (test(value)) return true;
    return false;
  };
}

/** Splits a leading `!` off a pattern; `\!` stands for a literal leading `!`. */
function splitNegation(pattern: string): { negated: boolean; body: string } {
  if (pattern.startsWith('\\!')) return { negated: false, body: pattern.slice(1) };
  if (pattern.startsWith('!')) return { negated: true, body: pattern.slice(1) };
  return { negated: false, body: pattern };
}

// The shapes most rules use (one exact value, or a list of them) as the cheapest test.
function specialize(positives: string[], exactOnly: boolean): ((raw: string | undefined) => boolean) | undefined {
  if (!exactOnly) return undefined;
  if (positives.length === 1) {
    const only = positives[0] as string;
    return (raw) => (raw === undefined ? '' : raw) === only;
  }
  const set = new Set(positives);
  return (raw) => set.has(raw === undefined ? '' : raw);
}

/** Compiles patterns (any of; `!`-prefixed ones exclude). Throws an Error with a user-facing message. */
export function compileValueMatcher(patterns: readonly string[], options: { trimTrailingWhitespace?: boolean } = {}): ValueMatcher {
  if (patterns.length === 0) throw new Error('expected at least one pattern, got an empty list');
  const positives: string[] = [];
  const negatives: string[] = [];
  for (const pattern of patterns) {
    const { negated, body } = splitNegation(pattern);
    (negated ? negatives : positives).push(body);
  }
  const positive = positives.length > 0 ? anyOf(positives.map(compilePattern)) : undefined;
  const negative = negatives.length > 0 ? anyOf(negatives.map(compilePattern)) : undefined;
  const exact = negatives.length === 0 && positives.every((p) => !isPattern(p) && !p.includes('\\'));
  // udev ignores trailing whitespace of attribute values unless the pattern has some.
  const trim = options.trimTrailingWhitespace === true && !patterns.some((p) => /\s$/.test(p));

  const testOne = specialize(positives, exact && !trim) ?? ((raw: string | undefined): boolean => {
    const value = raw === undefined ? '' : trim ? raw.trimEnd() : raw;
    return (positive === undefined || positive(value)) && (negative === undefined || !negative(value));
  });
  return {
    source: patterns.length === 1 ? (patterns[0] as string) : `[${patterns.join(', ')}]`,
    exactValues: exact ? positives : undefined,
    positives,
    initials: trim ? undefined : initialsOf(positives, negatives.length > 0),
    test: testOne,
    testAny(values) {
      let anyPositive = positive === undefined;
      for (const value of values) {
        if (negative?.(value)) return false;
        if (!anyPositive && positive?.(value)) anyPositive = true;
      }
      return anyPositive;
    },
  };
}
