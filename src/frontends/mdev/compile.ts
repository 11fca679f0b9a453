// The busybox mdev.conf front end, compiled to the one rule form. A line is
//   [-]SELECTOR USER:GROUP MODE [=PATH | >PATH | !] [@|$|*COMMAND ...]
// where SELECTOR is a regex for the device name, SUBSYSTEM/regex, $VAR=regex or
// @MAJOR,MINOR[-MINOR2]. The first matching line wins unless it starts with `-`.
// Differences from busybox (devtmpfs made the node already): `=PATH` and `>PATH` both add
// a link at PATH to the node, `!` cannot remove the node, commands run without a shell.
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import type { Accounts } from '../../os/accounts.js';
import { compileTemplate, type Template } from '../../rules/format.js';
import type { ValueMatcher } from '../../rules/match.js';
import type { Assignment, Condition, Diagnostic, Rule, SourceLocation } from '../../rules/model.js';
import { splitCommand } from '../../text/escape.js';

const END_LABEL = 'mdev.conf end';
const PROGRAM_DIRS = ['/sbin', '/bin', '/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin'];

function regexMatcher(source: string, regex: RegExp): ValueMatcher {
  return {
    source,
    exactValues: undefined,
    positives: [source],
    initials: undefined,
    test: (value) => regex.test(value ?? ''),
    testAny: (values) => [...values].some((v) => regex.test(v)),
  };
}

class LineError extends Error {}

export function compileMdevConf(text: string, file: string, accounts: Accounts): { rules: Rule[]; diagnostics: Diagnostic[] } {
  const rules: Rule[] = [];
  const diagnostics: Diagnostic[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const at: SourceLocation = { file, line: index + 1, column: raw.indexOf(line[0] as string) + 1 };
    const fail = (message: string, column = at.column): never => {
      diagnostics.push({ severity: 'error', at: { ...at, column }, message: `${message}; line ignored`, recovered: true });
      throw new LineError(message);
    };
    try {
      for (const rule of compileLine(line, at, accounts, fail, (message) => diagnostics.push({ severity: 'warning', at, message }))) rules.push({ ...rule, text: line });
    } catch (error) {
      if (!(error instanceof LineError)) throw error;
    }
  });
  if (rules.some((r) => r.goto === END_LABEL)) {
    rules.push({ name: `${basename(file)}:end`, at: { file, line: text.split('\n').length, column: 1 }, conditions: [], assignments: [], stop: false, label: END_LABEL, appliesTo: new Set(), actions: undefined, subsystems: undefined });
  }
  return { rules, diagnostics };
}

function compileRegex(source: string, fail: (m: string) => never): RegExp {
  try {
    // POSIX extended regex, matched against the whole name as mdev does.
    return new RegExp(`^(?:${source})$`);
  } catch (error) {
    return fail(`bad regular expression "${source}": ${(error as Error).message}`);
  }
}

function selector(text: string, at: SourceLocation, fail: (m: string) => never): Condition[] {
  const key = text;
  const numbers = /^@(\d+),(\d+)(?:-(\d+))?$/.exec(text);
  if (numbers) {
    const [major, low, high] = [Number(numbers[1]), Number(numbers[2]), Number(numbers[3] ?? numbers[2])];
    return [
      { kind: 'env', key, at, name: 'MAJOR', matcher: regexMatcher(String(major), new RegExp(`^${major}$`)) },
      { kind: 'env', key, at, name: 'MINOR', matcher: { ...regexMatcher(`${low}-${high}`, /^\d+$/), test: (v) => v !== undefined && /^\d+$/.test(v) && Number(v) >= low && Number(v) <= high } },
    ];
  }
  if (text.startsWith('@')) fail(`expected @MAJOR,MINOR or @MAJOR,MINOR-MINOR2, got "${text}"`);
  const env = /^\$([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(text);
  if (env) return [{ kind: 'env', key, at, name: env[1] as string, matcher: regexMatcher(env[2] as string, compileRegex(env[2] as string, fail)) }];
  const slash = text.indexOf('/');
  if (slash > 0) {
    const subsystem = text.slice(0, slash);
    const name = text.slice(slash + 1);
    return [
      { kind: 'field', key, at, field: 'subsystem', matcher: regexMatcher(subsystem, compileRegex(subsystem, fail)) },
      { kind: 'field', key, at, field: 'kernel', matcher: regexMatcher(name, compileRegex(name, fail)) },
    ];
  }
  return [{ kind: 'field', key, at, field: 'kernel', matcher: regexMatcher(text, compileRegex(text, fail)) }];
}

/** A shell word with $VAR / ${VAR} as a template over the event's properties. */
function word(text: string): Template {
  return compileTemplate(text.replace(/%/g, '%%').replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_, name: string) => `$env{${name}}`), { lenient: true });
}

function resolveProgram(name: string): string | undefined {
  if (name.startsWith('/')) return name;
  return PROGRAM_DIRS.map((d) => `${d}/${name}`).find((p) => existsSync(p));
}

function compileLine(line: string, at: SourceLocation, accounts: Accounts, fail: (m: string, column?: number) => never, warn: (m: string) => void): Rule[] {
  const fields = line.split(/\s+/);
  let [sel, owner, mode] = fields as [string, string | undefined, string | undefined];
  const rest = fields.slice(3);
  const keepGoing = sel.startsWith('-');
  if (keepGoing) sel = sel.slice(1);
  if (owner === undefined || mode === undefined) fail('expected SELECTOR USER:GROUP MODE');
  const conditions = selector(sel, at, fail);
  const [user, group] = (owner as string).split(':');
  if (user === undefined || group === undefined || user === '' || group === '') fail(`expected USER:GROUP, got "${owner}"`);
  const ownerAccount = accounts.user(user as string) ?? fail(`unknown user "${user}"`);
  const groupAccount = accounts.group(group as string) ?? fail(`unknown group "${group}"`);
  if (!/^[0-7]{3,4}$/.test(mode as string)) fail(`expected an octal mode, got "${mode}"`);
  const assignments: Assignment[] = [
    { kind: 'env', at, op: 'set', name: 'MDEV', value: compileTemplate('$kernel'), emptyValue: 'unsets' },
    { kind: 'owner', at, account: ownerAccount },
    { kind: 'group', at, account: groupAccount },
    { kind: 'mode', at, mode: Number.parseInt(mode as string, 8) },
  ];
  let i = 0;
  const target = rest[0];
  if (target !== undefined && (target.startsWith('=') || target.startsWith('>'))) {
    const path = target.slice(1);
    if (/%\d/.test(path)) warn(`"${target}": back-references (%1...) are not supported; no link is made`);
    else if (path === '' || path.split('/').includes('..')) fail(`"${target}": expected a path below /dev`);
    else assignments.push({ kind: 'symlink', at, op: 'add', value: compileTemplate(path.endsWith('/') ? `${path.replace(/%/g, '%%')}$kernel` : path.replace(/%/g, '%%'), { lenient: true }), escape: 'substitutions' });
    i = 1;
  } else if (target === '!') {
    warn('"!": devtmpfs creates the node; hotplugd cannot leave it out (the line applies otherwise)');
    i = 1;
  }
  const commandText = rest.slice(i).join(' ');
  const rules: Rule[] = [];
  const base = { at, stop: false, actions: undefined, subsystems: undefined };
  if (commandText !== '') {
    const when = commandText[0];
    if (when !== '@' && when !== '$' && when !== '*') fail(`expected =PATH, >PATH, ! or a command starting with @, $ or *, got "${commandText}"`);
    if (/[|;&<>`]|\$\(/.test(commandText.slice(1))) fail('shell syntax (| ; & < > ` $()) is not supported: hotplugd runs programs without a shell; put the command in a script');
    const words = splitCommand(commandText.slice(1));
    const program = resolveProgram(words[0] ?? '') ?? fail(`program "${words[0] ?? ''}" not found in ${PROGRAM_DIRS.join(', ')}`);
    const run: Assignment = { kind: 'run', at, command: { argv: [compileTemplate(program.replace(/%/g, '%%')), ...words.slice(1).map(word)] }, timeoutMs: undefined };
    if (when === '*') assignments.push(run);
    else {
      const action = when === '@' ? 'add' : 'remove';
      const actionMatcher = regexMatcher(action, new RegExp(`^${action}$`));
      rules.push({
        ...base,
        name: `${basename(at.file)}:${at.line}:${action}`,
        conditions: [...conditions, { kind: 'field', key: when, at, field: 'action', matcher: { ...actionMatcher, exactValues: [action] } }],
        assignments: [{ kind: 'env', at, op: 'set', name: 'MDEV', value: compileTemplate('$kernel'), emptyValue: 'unsets' }, run],
        actions: new Set([action]),
      });
    }
  }
  const main: Rule = { ...base, name: `${basename(at.file)}:${at.line}`, conditions, assignments };
  if (!keepGoing) main.goto = END_LABEL;
  return [...rules, main];
}
