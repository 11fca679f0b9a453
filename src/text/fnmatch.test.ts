// fnmatchTester's linear path for `*`-only patterns must answer as the RegExp does.
import { describe, expect, it } from 'vitest';
import { fnmatchRegExp, fnmatchTester } from './fnmatch.js';

describe('fnmatchTester', () => {
  it('answers as fnmatchRegExp on generated patterns and strings', () => {
    // A small alphabet makes overlaps (pieces found in the wrong place, suffix and middle
    // sharing characters) common.
    let seed = 7;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const word = (alphabet: string, length: number): string => Array.from({ length }, () => alphabet[random(alphabet.length)]).join('');
    let matches = 0;
    for (let i = 0; i < 20_000; i++) {
      const pattern = word('ab*?[]!', random(7));
      const value = word('ab/', random(8));
      const expected = fnmatchRegExp(pattern).test(value);
      expect(fnmatchTester(pattern)(value), `${pattern} ${value}`).toBe(expected);
      if (expected) matches++;
    }
    expect(matches).toBeGreaterThan(1_000);
  });

  it('takes linear time where the RegExp backtracks', () => {
    const test = fnmatchTester('usb:v*p*d*dc02dsc00*');
    expect(test('usb:v0421p007Bd0100dc02dsc00dp00')).toBe(true);
    expect(test('usb:v0421p007Bd0100dc02dsc01dp00')).toBe(false);
    expect(test(`usb:v${'p'.repeat(20_000)}d`)).toBe(false);
    expect(fnmatchTester('a*a')('a')).toBe(false);
    expect(fnmatchTester('ab*ba')('aba')).toBe(false);
    expect(fnmatchTester('*')('')).toBe(true);
  });
});
