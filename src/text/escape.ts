// udev's treatment of untrusted text: characters outside a safe set become `_`, runs of
// whitespace in substituted values become one `_`, program output is checked byte by
// byte (valid UTF-8 kept, invalid bytes replaced), command lines split into words.

const SAFE = /[0-9A-Za-z#+\-.:=@_]/;
const SPACE = /[ \t\n\v\f\r]/;

/** Characters udev keeps in program output and attribute values besides the safe set. */
export const ALLOWED_IN_INPUT = '/ $%?,';

/** udev_replace_chars: keeps the safe set, `allow`, `\x` escapes and non-ASCII letters; the rest becomes `_`. */
export function replaceChars(text: string, allow = ''): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (SAFE.test(c) || allow.includes(c)) out += c;
    else if (c === '\\' && text[i + 1] === 'x') {
      out += '\\x';
      i++;
    } else if (c.charCodeAt(0) >= 0x80 && c !== '\uFFFD') out += c;
    else if (SPACE.test(c) && allow.includes(' ')) out += ' ';
    else out += '_';
  }
  return out;
}

/** udev_replace_whitespace: no leading or trailing whitespace, each inner run becomes one `_`. */
export function replaceWhitespace(text: string): string {
  return text.trim().replace(/[ \t\n\v\f\r]+/g, '_');
}

/** Decodes program output: valid UTF-8 sequences are kept, every invalid byte becomes `_`. */
export function decodeUntrusted(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i] as number;
    const length = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    let valid = length > 0 && i + length <= bytes.length;
    for (let k = 1; valid && k < length; k++) valid = ((bytes[i + k] as number) & 0xc0) === 0x80;
    if (valid && length > 1) {
      const char = Buffer.from(bytes.subarray(i, i + length)).toString('utf8');
      valid = !char.includes('\uFFFD');
      if (valid) out += char;
    } else if (valid) out += String.fromCharCode(b);
    if (!valid) {
      out += '\uFFFD';
      i++;
    } else i += length;
  }
  return out;
}

/** A tag as udev accepts it: letters, digits, `-` and `_`. */
export function isValidTag(tag: string): boolean {
  return /^[A-Za-z0-9_-]+$/.test(tag);
}

/**
 * A SYMLINK value as a path relative to the dev root: relative values are below /dev,
 * absolute ones must be; `.` and repeated slashes are dropped; `..` is refused.
 */
export function normalizeDevlink(link: string): string | undefined {
  const segments = (link.startsWith('/') ? link : `/dev/${link}`).split('/').filter((s) => s !== '' && s !== '.');
  if (segments[0] !== 'dev' || segments.length < 2 || segments.includes('..')) return undefined;
  return segments.slice(1).join('/');
}

/**
 * Splits a command line as udev does before running it: words separated by whitespace,
 * '...' and "..." group words, a backslash keeps the next character (and itself).
 */
export function splitCommand(command: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: string | undefined;
  for (let i = 0; i < command.length; i++) {
    const c = command[i] as string;
    if (c === '\\' && i + 1 < command.length) {
      word += c + (command[i + 1] as string);
      inWord = true;
      i++;
    } else if (quote !== undefined) {
      if (c === quote) quote = undefined;
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (SPACE.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}
