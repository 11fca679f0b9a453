// Substitutions in assigned values and program arguments: udev's `$kernel`/`%k` set,
// driven by one table, compiled once at load time into literal and substitution parts.
import { replaceWhitespace } from '../text/escape.js';

/** udev's substitutions: long name, `%` letter, and whether it takes a `{argument}`. */
export const SUBSTITUTIONS = [
  { name: 'devnode', letter: 'N', arg: 'none' },
  { name: 'tempnode', letter: undefined, arg: 'none' }, // udev's deprecated alias of devnode
  { name: 'attr', letter: 's', arg: 'required' },
  { name: 'sysfs', letter: undefined, arg: 'required' }, // udev's deprecated alias of attr
  { name: 'env', letter: 'E', arg: 'required' },
  { name: 'kernel', letter: 'k', arg: 'none' },
  { name: 'number', letter: 'n', arg: 'none' },
  { name: 'driver', letter: 'd', arg: 'none' },
  { name: 'devpath', letter: 'p', arg: 'none' },
  { name: 'id', letter: 'b', arg: 'none' },
  { name: 'major', letter: 'M', arg: 'none' },
  { name: 'minor', letter: 'm', arg: 'none' },
  { name: 'result', letter: 'c', arg: 'optional' },
  { name: 'parent', letter: 'P', arg: 'none' },
  { name: 'name', letter: 'D', arg: 'none' },
  { name: 'links', letter: 'L', arg: 'none' },
  { name: 'root', letter: 'r', arg: 'none' },
  { name: 'sys', letter: 'S', arg: 'none' },
] as const;

export type SubstitutionName = Exclude<(typeof SUBSTITUTIONS)[number]['name'], 'tempnode' | 'sysfs'>;

export type TemplatePart = string | { subst: SubstitutionName; arg?: string };

/** Where the rule languages' substitutions differ, chosen by the front end at load time. */
export interface TemplateStyle {
  /**
   * `$id` and `$driver`: of the parent a `parent` condition matched (udev: empty when none
   * did), or of that parent else the device itself (hotplugd).
   */
  readonly parentOf: 'matched' | 'matched-or-device';
  /**
   * `$attr{name}` missing on the device: from the matched parent only (udev), or from the
   * matched parent else the nearest ancestor that has it (hotplugd).
   */
  readonly attrFallback: 'matched-parent' | 'ancestors';
  /** `$attr` values: as read (trailing whitespace removed), or with udev's unsafe characters replaced. */
  readonly attrEscape: 'none' | 'unsafe-replaced';
  /** `$major` and `$minor` of a device without numbers: empty, or `0` (udev). */
  readonly missingNumber: '' | '0';
  /**
   * `$env{DEVNAME}`: as the kernel sent it, relative to the dev root (hotplugd, mdev), or
   * the device node's path (udev: `/dev/sdb1`).
   */
  readonly devname: DevnameView;
}

/** How a rule language sees DEVNAME: the kernel's relative name, or the node's path (udev). */
export type DevnameView = 'kernel' | 'devnode';

/** hotplugd's own rules (YAML, mdev.conf). */
export const NATIVE_STYLE: TemplateStyle = { parentOf: 'matched-or-device', attrFallback: 'ancestors', attrEscape: 'none', missingNumber: '', devname: 'kernel' };

export interface Template {
  readonly source: string;
  readonly parts: readonly TemplatePart[];
  /** The value when the template has no substitutions. */
  readonly constant: string | undefined;
  readonly style: TemplateStyle;
}

/** A template that could not be compiled; `offset` is the position in the template text. */
export class TemplateError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
  }
}

// Longest names first, so `$devnode` is not read as `$devpath`-like prefixes of another.
const BY_LENGTH = [...SUBSTITUTIONS].sort((a, b) => b.name.length - a.name.length);
const CANONICAL: Record<string, SubstitutionName> = { tempnode: 'devnode', sysfs: 'attr' };

function canonical(name: string): SubstitutionName {
  return (CANONICAL[name] ?? name) as SubstitutionName;
}

/**
 * Compiles `text`; throws TemplateError for unknown substitutions or missing `{argument}`s.
 * `lenient` (udev's own behaviour) keeps an unknown `$word` or `%x` as literal text instead.
 */
export function compileTemplate(text: string, options: { lenient?: boolean; style?: TemplateStyle } = {}): Template {
  const parts: TemplatePart[] = [];
  let literal = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    const next = text[i + 1];
    if ((c === '$' || c === '%') && next === c) {
      literal += c;
      i += 2;
      continue;
    }
    if (c !== '$' && c !== '%') {
      literal += c;
      i++;
      continue;
    }
    const start = i;
    const entry =
      c === '$'
        ? BY_LENGTH.find((s) => text.startsWith(s.name, i + 1))
        : SUBSTITUTIONS.find((s) => s.letter !== undefined && s.letter === next);
    if (entry === undefined && options.lenient) {
      literal += c;
      i++;
      continue;
    }
    if (entry === undefined) {
      const word = c === '$' ? (/^[A-Za-z_]*/.exec(text.slice(i + 1))?.[0] ?? '') : (next ?? '');
      throw new TemplateError(
        `unknown substitution "${c}${word}" (write "${c}${c}" for a literal "${c}")`,
        start,
      );
    }
    i += c === '$' ? entry.name.length + 1 : 2;
    let arg: string | undefined;
    if (text[i] === '{') {
      const close = text.indexOf('}', i);
      if (close < 0) throw new TemplateError(`unterminated "{" after "${text.slice(start, i)}"`, i);
      arg = text.slice(i + 1, close);
      i = close + 1;
      if (entry.arg === 'none' && options.lenient) arg = undefined;
      else if (entry.arg === 'none') throw new TemplateError(`"${text.slice(start, close + 1)}" takes no {argument}`, start);
    }
    if (entry.arg === 'required' && !arg) {
      throw new TemplateError(`"${text.slice(start, i)}" needs an argument, e.g. "${c === '$' ? `$${entry.name}` : `%${entry.letter}`}{NAME}"`, start);
    }
    if (entry.name === 'result' && arg !== undefined && !/^\d+\+?$/.test(arg)) {
      throw new TemplateError(`"$result{${arg}}": expected a word number such as {0} or {1+}`, start);
    }
    if (literal !== '') parts.push(literal);
    literal = '';
    parts.push(arg === undefined ? { subst: canonical(entry.name) } : { subst: canonical(entry.name), arg });
  }
  if (literal !== '' || parts.length === 0) parts.push(literal);
  const constant = parts.length === 1 && typeof parts[0] === 'string' ? parts[0] : undefined;
  return { source: text, parts, constant, style: options.style ?? NATIVE_STYLE };
}

/** What substitutions read: implemented by the evaluator over one event. */
export interface SubstitutionSource {
  lookup(name: SubstitutionName, arg: string | undefined, style: TemplateStyle): string;
}

/**
 * How substituted text is escaped: kept as is, made safe as part of a file name, or (udev's
 * SYMLINK values) with each run of whitespace as one `_`, except in `$result`.
 */
export type Escape = 'none' | 'path' | 'spaces';

export function expandTemplate(template: Template, source: SubstitutionSource, escape: Escape = 'none'): string {
  if (template.constant !== undefined) return template.constant;
  let out = '';
  for (const part of template.parts) {
    if (typeof part === 'string') {
      out += part;
      continue;
    }
    let value = source.lookup(part.subst, part.arg, template.style);
    if (part.subst === 'result' && part.arg !== undefined) value = selectWords(value, part.arg);
    if (escape === 'path') value = sanitizePathComponent(value);
    else if (escape === 'spaces' && part.subst !== 'result') value = replaceWhitespace(value);
    out += value;
  }
  return out;
}

/** As udev: `$result{N}` is the Nth word (from 1; 0 is the whole output); `$result{N+}` that word and the rest. */
function selectWords(value: string, arg: string): string {
  const n = Number.parseInt(arg, 10);
  if (n === 0) return value;
  const words = value.trim().split(/\s+/).filter((w) => w !== '');
  return arg.endsWith('+') ? words.slice(n - 1).join(' ') : (words[n - 1] ?? '');
}

// udev keeps alphanumerics, `#+-.:=@_` and non-ASCII letters in device-derived names.
const UNSAFE_IN_NAME = /[^A-Za-z0-9#+\-.:=@_\p{L}\p{N}]/gu;

/**
 * Device-derived text made safe inside a file name: whitespace and every other unsafe
 * character (including `/`) become `_`, and a value of only dots cannot mean `.` or `..`.
 */
export function sanitizePathComponent(value: string): string {
  const safe = value.replace(UNSAFE_IN_NAME, '_');
  return /^\.+$/.test(safe) ? '_'.repeat(safe.length) : safe;
}
