// YAML rule globs against glibc's fnmatch(3) (flags 0, a UTF-8 locale), the matcher udev
// uses: arbitrary hostile strings (slashes, dots, newlines, control characters, non-ASCII)
// and random patterns, compared one by one. glibc is reached through python3's ctypes.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { compileValueMatcher, expandBraces } from '../../src/rules/match.js';

const REFERENCE = `
import ctypes, json, sys
libc = ctypes.CDLL(None)
libc.setlocale.restype = ctypes.c_char_p
assert libc.setlocale(6, b'C.UTF-8')
cases = json.load(sys.stdin)
print(json.dumps([libc.fnmatch(p.encode(), v.encode(), 0) == 0 for p, v in cases]))
`;

function referenceMatches(cases: [string, string][]): boolean[] {
  return JSON.parse(execFileSync('python3', ['-c', REFERENCE], { input: JSON.stringify(cases), maxBuffer: 1 << 26 }).toString());
}

// A small deterministic generator: a failure names its seed's case and can be replayed.
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const ATOMS = ['a', 'b', '.', '/', '..', '/../', '\n', '\t', '\x1b', '\x7f', ' ', '-', ']', 'é', 'ü', '中', '😀', '*', '?', '[', '\\', '!', '{', ','];

function randomString(next: () => number): string {
  let s = '';
  const length = Math.floor(next() * 8);
  for (let i = 0; i < length; i++) s += ATOMS[Math.floor(next() * ATOMS.length)];
  return s;
}

// Pattern pieces glibc and our matcher both define: no braces (ours alone), no leading `!`
// (our negation), classes only where POSIX fixes their members regardless of locale.
const PIECES = ['*', '?', '?*', 'a', 'b', '.', '/', '/../', '\n', 'é', '😀', '[ab]', '[!a]', '[^/]', '[a-z]', '[[:digit:]]', '[.\n]', '\\*', '\\?', '\\[', '-'];

function randomPattern(next: () => number, value: string): string {
  // Half the patterns are built from a value, so that matches are common, not rare.
  if (next() < 0.5 && value !== '') {
    return [...value].map((c) => (next() < 0.3 ? '?' : next() < 0.2 ? '*' : /[*?[\\]/.test(c) ? `\\${c}` : c)).join('');
  }
  let p = '';
  const length = 1 + Math.floor(next() * 5);
  for (let i = 0; i < length; i++) p += PIECES[Math.floor(next() * PIECES.length)];
  return p;
}

describe('YAML globs are fnmatch(3), as udev matches', () => {
  it('agree with glibc on 6,000 random patterns and hostile strings', () => {
    const next = random(20261128);
    const cases: [string, string][] = [];
    for (let i = 0; i < 6000; i++) {
      const value = randomString(next);
      let pattern = randomPattern(next, value);
      if (pattern.startsWith('!') || pattern === '') pattern = `a${pattern}`;
      cases.push([pattern, value]);
    }
    const expected = referenceMatches(cases);
    const disagreements = cases
      .map(([pattern, value], i) => ({ pattern, value, glibc: expected[i], ours: compileValueMatcher([pattern]).test(value) }))
      .filter((c) => c.glibc !== c.ours);
    expect(disagreements.slice(0, 5)).toEqual([]);
    expect(expected.filter(Boolean).length).toBeGreaterThan(600);
  });

  it('match what the brief calls "set to anything" whatever the value holds', () => {
    const anything = compileValueMatcher(['?*']);
    for (const value of ['/dev/evil', '../../../../tmp/pwned', 'a\nb', '.hidden', 'x/../y', '\x1b[2J', '😀']) {
      expect(anything.test(value), JSON.stringify(value)).toBe(true);
    }
    expect(compileValueMatcher(['*pwned']).test('../../../../tmp/pwned')).toBe(true);
    expect(compileValueMatcher(['/dev/*']).test('/dev/../etc/passwd')).toBe(true);
  });

  it('expand braces at load time into fnmatch alternatives', () => {
    expect(expandBraces('tty{USB,ACM}[0-9]')).toEqual(['ttyUSB[0-9]', 'ttyACM[0-9]']);
    expect(expandBraces('{a,b{c,d}}x')).toEqual(['ax', 'bcx', 'bdx']);
    expect(expandBraces('{x}')).toEqual(['{x}']);
    expect(expandBraces('a\\{b,c}')).toEqual(['a\\{b,c}']);
    expect(expandBraces('{open')).toEqual(['{open']);
    expect(compileValueMatcher(['{x}']).test('{x}')).toBe(true);
    expect(compileValueMatcher(['tty{USB,ACM}?']).test('ttyACM0')).toBe(true);
  });
});
