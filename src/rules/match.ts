// Value matchers compiled once at load time: exact strings, picomatch globs, lists
// (any of) and negation. An absent value is tested as the empty string, so `""`
// matches "unset or empty" and `"!"` (or `"?*"`) matches "set to something".
import picomatch from 'picomatch';

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
}

// Kernel names and devpaths are matched like fnmatch(3) without FNM_PATHNAME (as udev
// does): `*` crosses `/`. Negation is ours (a leading `!`), so picomatch must not do it.
const GLOB_OPTIONS = { bash: true, dot: true, nonegate: true } as const;

// `ttyUSB*`-style patterns (a literal prefix and one trailing star) are most globs in rules.
const PREFIX_STAR = /^[^*?[\]{}()!+@\\]*\*$/;

function compilePattern(pattern: string): Test {
  if (!picomatch.scan(pattern).isGlob) return (value) => value === pattern;
  if (PREFIX_STAR.test(pattern)) {
    const prefix = pattern.slice(0, -1);
    return (value) => value.startsWith(prefix);
  }
  const regex = picomatch.makeRe(pattern, GLOB_OPTIONS);
  return (value) => regex.test(value);
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
  const exact = negatives.length === 0 && positives.every((p) => !picomatch.scan(p).isGlob);
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
