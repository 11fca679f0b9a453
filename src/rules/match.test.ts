import { describe, expect, it } from 'vitest';
import { compileValueMatcher } from './match.js';

describe('compileValueMatcher', () => {
  // [patterns, value, expected]
  const cases: [string[], string | undefined, boolean][] = [
    [['add'], 'add', true],
    [['add'], 'remove', false],
    [['add'], undefined, false],
    [['ttyUSB*'], 'ttyUSB0', true],
    [['ttyUSB*'], 'ttyACM0', false],
    [['ttyUSB?'], 'ttyUSB10', false],
    [['ttyUSB[0-3]'], 'ttyUSB2', true],
    [['ttyUSB[0-3]'], 'ttyUSB7', false],
    [['tty{USB,ACM}*'], 'ttyACM1', true],
    [['add', 'change'], 'change', true],
    [['add', 'change'], 'remove', false],
    [['!remove'], 'add', true],
    [['!remove'], 'remove', false],
    [['!remove'], undefined, true],
    [['tty*', '!ttyS*'], 'ttyUSB0', true],
    [['tty*', '!ttyS*'], 'ttyS0', false],
    [['!ttyS*', '!ttyAMA*'], 'ttyAMA0', false],
    [['!ttyS*', '!ttyAMA*'], 'ttyUSB0', true],
    [[''], undefined, true],
    [[''], '', true],
    [[''], 'x', false],
    [['!'], undefined, false],
    [['!'], 'x', true],
    [['?*'], '', false],
    [['?*'], 'x', true],
    [['\\!important'], '!important', true],
    [['\\!important'], 'important', false],
    // `*` crosses `/`, as udev's fnmatch without FNM_PATHNAME
    [['/devices/*/usb1/*'], '/devices/pci0000:00/0000:00:14.0/usb1/1-2', true],
    [['*.hidden'], '.x.hidden', true],
  ];
  it.each(cases)('%j tests %j as %s', (patterns, value, expected) => {
    expect(compileValueMatcher(patterns).test(value)).toBe(expected);
  });

  it('lists exact values for indexing only when nothing else can match', () => {
    expect(compileValueMatcher(['add', 'change']).exactValues).toEqual(['add', 'change']);
    expect(compileValueMatcher(['add', 'ch*']).exactValues).toBeUndefined();
    expect(compileValueMatcher(['!remove']).exactValues).toBeUndefined();
  });

  it('ignores trailing whitespace of attribute values unless the pattern has some', () => {
    expect(compileValueMatcher(['Flash Disk'], { trimTrailingWhitespace: true }).test('Flash Disk      ')).toBe(true);
    expect(compileValueMatcher(['Flash Disk'], {}).test('Flash Disk   ')).toBe(false);
    expect(compileValueMatcher(['Flash Disk '], { trimTrailingWhitespace: true }).test('Flash Disk   ')).toBe(false);
  });

  it('tests sets of values (tags): one must match, none may match a negation', () => {
    const matcher = compileValueMatcher(['console', '!broken']);
    expect(matcher.testAny(['a', 'console'])).toBe(true);
    expect(matcher.testAny(['console', 'broken'])).toBe(false);
    expect(matcher.testAny([])).toBe(false);
    expect(compileValueMatcher(['!broken']).testAny([])).toBe(true);
  });

  it('refuses an empty list', () => {
    expect(() => compileValueMatcher([])).toThrow(/at least one pattern/);
  });
});
