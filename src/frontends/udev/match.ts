// udev's string matching, compiled at load time: `|` separates alternatives (an empty
// alternative matches an empty value), each a plain string or an fnmatch glob; `""`
// matches an empty or unset value and `"?*"` a non-empty one; `!=` negates the whole.
import { fnmatchTester, isGlob } from '../../text/fnmatch.js';
import { initialsOf, type ValueMatcher } from '../../rules/match.js';

export interface UdevMatchOptions {
  negate: boolean;
  caseInsensitive: boolean;
  /** SUBSYSTEM=="subsystem" also matches "bus" and "class" (udev's legacy spelling). */
  subsystemKey?: boolean;
  /** False for keys whose value is one string, not `|` alternatives. */
  alternatives?: boolean;
}

const SUBSYSTEM_WORDS = new Set(['subsystem', 'bus', 'class']);

export function compileUdevMatcher(value: string, options: UdevMatchOptions): ValueMatcher {
  let negate = options.negate;
  const fold = options.caseInsensitive;
  let test: (s: string) => boolean;
  let positives: string[] = [value];
  let exact: string[] | undefined;
  let initials: string[] | undefined;
  if (options.subsystemKey && SUBSYSTEM_WORDS.has(value)) {
    test = (s) => SUBSYSTEM_WORDS.has(fold ? s.toLowerCase() : s);
  } else if (value === '' || value === '?*') {
    if (value === '?*') negate = !negate;
    test = (s) => s === '';
  } else {
    const parts = options.alternatives === false ? [value] : value.split('|');
    const withEmpty = parts.some((p) => p === '');
    positives = parts.filter((p) => p !== '');
    const tests = positives.map((p): ((s: string) => boolean) => {
      if (isGlob(p)) return fnmatchTester(p, fold);
      if (fold) {
        const lower = p.toLowerCase();
        return (s) => s.toLowerCase() === lower;
      }
      return (s) => s === p;
    });
    if (!fold && !withEmpty && !negate && positives.every((p) => !isGlob(p))) exact = positives;
    if (!fold && !withEmpty) initials = initialsOf(positives, negate);
    const any = tests.length === 1 ? (tests[0] as (s: string) => boolean) : (s: string) => tests.some((t) => t(s));
    test = withEmpty ? (s) => s === '' || any(s) : any;
  }
  const matches = test;
  return {
    source: value,
    exactValues: exact,
    positives,
    initials,
    test: (raw) => matches(raw ?? '') !== negate,
    testAny(values) {
      for (const v of values) if (matches(v)) return !negate;
      return negate;
    },
  };
}
