// fnmatch(3) without flags, as udev and mdev match names: `*` and `?` also match `/`,
// `[...]` is a bracket expression (`!` or `^` negates, ranges, [:classes:]), and a
// backslash quotes the next character. Compiled once, at load time, to a RegExp.

const CLASSES: Record<string, string> = {
  alnum: 'A-Za-z0-9',
  alpha: 'A-Za-z',
  blank: ' \\t',
  cntrl: '\\x00-\\x1f\\x7f',
  digit: '0-9',
  graph: '\\x21-\\x7e',
  lower: 'a-z',
  print: '\\x20-\\x7e',
  punct: '!-\\/:-@\\[-`{-~',
  space: ' \\t\\n\\r\\f\\v',
  upper: 'A-Z',
  xdigit: '0-9A-Fa-f',
};

const GLOB_CHARS = /[*?[]/;

// The RegExp is compiled with the `u` flag, so `?` is one character (an emoji too, as
// glibc's fnmatch in a UTF-8 locale), and only syntax characters may be escaped.
function escapeRegExp(c: string, inBracket = false): string {
  return /[\\^$.*+?()[\]{}|/]/.test(c) || (inBracket && c === '-') ? `\\${c}` : c;
}

/** The regex text of the bracket expression starting at `pattern[start]` (a `[`), or undefined when it is not closed. */
function bracket(pattern: string, start: number): { source: string; end: number } | undefined {
  let i = start + 1;
  let negate = false;
  if (pattern[i] === '!' || pattern[i] === '^') {
    negate = true;
    i++;
  }
  let body = '';
  let first = true;
  while (i < pattern.length) {
    const c = pattern[i] as string;
    if (c === ']' && !first) return { source: `[${negate ? '^' : ''}${body}]`, end: i + 1 };
    first = false;
    if (c === '[' && pattern[i + 1] === ':') {
      const close = pattern.indexOf(':]', i + 2);
      const cls = close > 0 ? CLASSES[pattern.slice(i + 2, close)] : undefined;
      if (cls !== undefined) {
        body += cls;
        i = close + 2;
        continue;
      }
    }
    if (c === '\\' && i + 1 < pattern.length) {
      body += escapeRegExp(pattern[i + 1] as string, true);
      i += 2;
      continue;
    }
    if (c === '-' && body !== '' && pattern[i + 1] !== ']' && i + 1 < pattern.length) {
      body += '-';
      i++;
      continue;
    }
    body += escapeRegExp(c, true);
    i++;
  }
  return undefined;
}

/** True when the pattern has glob characters (udev's string_is_glob). */
export function isGlob(pattern: string): boolean {
  return GLOB_CHARS.test(pattern);
}

/** The whole-string RegExp of an fnmatch pattern. */
export function fnmatchRegExp(pattern: string, caseInsensitive = false): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; ) {
    const c = pattern[i] as string;
    if (c === '*') {
      source += '[\\s\\S]*';
      i++;
    } else if (c === '?') {
      source += '[\\s\\S]';
      i++;
    } else if (c === '[') {
      const b = bracket(pattern, i);
      if (b === undefined) {
        source += '\\[';
        i++;
      } else {
        source += b.source;
        i = b.end;
      }
    } else if (c === '\\' && i + 1 < pattern.length) {
      source += escapeRegExp(pattern[i + 1] as string);
      i += 2;
    } else {
      source += escapeRegExp(c);
      i++;
    }
  }
  return new RegExp(`^${source}$`, caseInsensitive ? 'iu' : 'u');
}

/**
 * A test of whole strings against one fnmatch pattern, the one every glob of rules, hwdb and
 * filters goes through. A pattern of literals and `*` only (most of them) is matched by
 * finding its pieces in order, in linear time: the RegExp of `*a*b*c*` backtracks through
 * every split of a string it does not match, and the strings are devices' own.
 */
export function fnmatchTester(pattern: string, caseInsensitive = false): (value: string) => boolean {
  if (caseInsensitive || /[?[\\]/.test(pattern)) {
    const regex = fnmatchRegExp(pattern, caseInsensitive);
    return (value) => regex.test(value);
  }
  const pieces = pattern.split('*');
  if (pieces.length === 1) return (value) => value === pattern;
  const first = pieces[0] as string;
  const last = pieces[pieces.length - 1] as string;
  const middle = pieces.slice(1, -1).filter((piece) => piece !== '');
  return (value) => {
    if (value.length < first.length + last.length || !value.startsWith(first) || !value.endsWith(last)) return false;
    let at = first.length;
    const end = value.length - last.length;
    for (const piece of middle) {
      const found = value.indexOf(piece, at);
      if (found < 0 || found + piece.length > end) return false;
      at = found + piece.length;
    }
    return true;
  };
}

/** A test of a value against any of several fnmatch patterns (filters on the command line and the socket). */
export function fnmatchAny(patterns: readonly string[]): (value: string) => boolean {
  const tests = patterns.map((pattern) => fnmatchTester(pattern));
  return (value) => tests.some((test) => test(value));
}
