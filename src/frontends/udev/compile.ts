// The classic udev front end: a .rules file → the one compiled form. Each rule line is
// checked as udev(7) describes; a line with an error is dropped (with file:line:column)
// and the rest of the file loads, as udev does. Tokens are put in udev's evaluation
// order: matches before assignments, cheap matches before parents, programs and imports.
import { basename } from 'node:path';
import { builtin as findBuiltin } from '../../builtins/registry.js';
import type { Accounts } from '../../os/accounts.js';
import { compileTemplate, type Template, type TemplateStyle } from '../../rules/format.js';
import type { Assignment, Condition, Diagnostic, ImportSpec, ParentCondition, Rule, SourceLocation } from '../../rules/model.js';
import { exactValuesOf } from '../../rules/ruleset.js';
import { compileUdevMatcher } from './match.js';
import { logicalLines, parseRule, type UdevToken } from './syntax.js';

/** udev's substitutions: `$id`, `$driver` and `$attr` follow only the parent a rule matched; `$attr` values are sanitised; `$major` of no device is 0. */
export const UDEV_STYLE: TemplateStyle = { parentOf: 'matched', attrFallback: 'matched-parent', attrEscape: 'unsafe-replaced', missingNumber: '0', devname: 'devnode' };

// Properties the kernel or udev owns: ENV{...}= may not set them (udev's device_property_can_set).
const READ_ONLY_PROPERTIES = new Set(['ACTION', 'DEVLINKS', 'DEVNAME', 'DEVPATH', 'DEVTYPE', 'DRIVER', 'IFINDEX', 'MAJOR', 'MINOR', 'SEQNUM', 'SUBSYSTEM', 'TAGS', 'CURRENT_TAGS', 'USEC_INITIALIZED']);

// udev's token order (its UdevRuleTokenType): a rule's tokens are evaluated in this order.
const ORDER = {
  ACTION: 0, DEVPATH: 1, KERNEL: 2, SYMLINK_MATCH: 3, NAME_MATCH: 4, ENV_MATCH: 5, CONST: 6, TAG_MATCH: 7, SUBSYSTEM: 8, DRIVER: 9,
  ATTR_MATCH: 10, SYSCTL_MATCH: 11, PARENTS: 12, TEST: 17, PROGRAM: 18, IMPORT_FILE: 19, IMPORT_PROGRAM: 20, IMPORT_BUILTIN: 21,
  IMPORT_DB: 22, IMPORT_CMDLINE: 23, IMPORT_PARENT: 24, RESULT: 25,
  OPTIONS: 27, LINK_PRIORITY: 31, OWNER: 33, GROUP: 34, MODE: 35, TAG: 39, STATIC_NODE: 40, SECLABEL: 41, ENV: 42, NAME: 43,
  SYMLINK: 44, ATTR: 45, SYSCTL: 46, RUN_BUILTIN: 47, RUN: 48,
} as const;
const PARENT_ORDER = { KERNELS: 0, SUBSYSTEMS: 1, DRIVERS: 2, ATTRS: 3, TAGS: 4 } as const;

type Compiled =
  | { order: number; condition: Condition }
  | { order: number; parent: ParentCondition; parentOrder: number }
  | { order: number; assignment: Assignment };

class LineError extends Error {}

export interface UdevCompileResult {
  rules: Rule[];
  diagnostics: Diagnostic[];
}

/** Compiles one udev rules file. Pure apart from the accounts lookup. */
export function compileUdevRules(text: string, file: string, accounts: Accounts): UdevCompileResult {
  const diagnostics: Diagnostic[] = [];
  const rules: Rule[] = [];
  const { lines, problems } = logicalLines(text);
  for (const p of problems) diagnostics.push({ severity: 'error', at: { file, line: p.line, column: p.column }, message: p.message, recovered: true });
  for (const logical of lines) {
    const parsed = parseRule(logical);
    if (parsed.problem) {
      const p = parsed.problem;
      diagnostics.push({ severity: 'error', at: { file, line: p.line, column: p.column }, message: `${p.message}; rule ignored`, recovered: true });
      continue;
    }
    const compiler = new LineCompiler(file, accounts, diagnostics);
    const rule = compiler.compile(parsed.rule.tokens, { file, line: parsed.rule.line, column: parsed.rule.column });
    if (rule) rules.push({ ...rule, text: logical.text });
  }
  checkGotos(rules, diagnostics);
  return { rules, diagnostics };
}

// A GOTO must name a LABEL further down the same file; otherwise udev ignores the GOTO.
function checkGotos(rules: Rule[], diagnostics: Diagnostic[]): void {
  rules.forEach((rule, index) => {
    if (rule.goto === undefined) return;
    if (rules.slice(index + 1).some((r) => r.label === rule.goto)) return;
    diagnostics.push({ severity: 'error', at: rule.at, message: `GOTO="${rule.goto}" has no matching LABEL below it; the GOTO is ignored`, recovered: true });
    delete rule.goto;
  });
}

class LineCompiler {
  #file: string;
  #accounts: Accounts;
  #diagnostics: Diagnostic[];
  #compiled: Compiled[] = [];
  #label: string | undefined;
  #goto: string | undefined;
  #effects = new Set<'devnode' | 'netif' | 'other'>();

  constructor(file: string, accounts: Accounts, diagnostics: Diagnostic[]) {
    this.#file = file;
    this.#accounts = accounts;
    this.#diagnostics = diagnostics;
  }

  compile(tokens: UdevToken[], at: SourceLocation): Rule | undefined {
    try {
      for (const token of tokens) this.#token(token);
    } catch (error) {
      if (!(error instanceof LineError)) throw error;
      return undefined;
    }
    if (this.#effects.size === 0 && this.#goto === undefined && this.#label === undefined) {
      this.#diagnostics.push({ severity: 'warning', at, message: 'the rule has no effect (only matches); ignored' });
      return undefined;
    }
    // Stable: tokens of one kind keep the order they were written in.
    const sorted = this.#compiled.map((c, i) => ({ c, i })).sort((a, b) => a.c.order - b.c.order || a.i - b.i).map(({ c }) => c);
    const conditions: Condition[] = [];
    const assignments: Assignment[] = [];
    let parents: { parent: ParentCondition; parentOrder: number }[] | undefined;
    for (const c of sorted) {
      if ('condition' in c) conditions.push(c.condition);
      else if ('assignment' in c) assignments.push(c.assignment);
      else if (parents === undefined) {
        parents = [c];
        conditions.push({ kind: 'parent', key: 'parents', at: c.parent.at, conditions: [] });
      } else parents.push(c);
    }
    if (parents) {
      const group = conditions.find((c) => c.kind === 'parent') as Extract<Condition, { kind: 'parent' }>;
      group.conditions = parents.sort((a, b) => a.parentOrder - b.parentOrder).map((p) => p.parent);
      group.key = group.conditions.map((p) => p.key).join(', ');
      group.at = group.conditions[0]?.at ?? group.at;
    }
    const rule: Rule = {
      name: `${basename(this.#file)}:${at.line}`,
      at,
      conditions,
      assignments,
      stop: false,
      keepsMatchedParent: true,
      actions: exactValuesOf(conditions, 'action'),
      subsystems: exactValuesOf(conditions, 'subsystem'),
    };
    if (this.#label !== undefined) rule.label = this.#label;
    if (this.#goto !== undefined) rule.goto = this.#goto;
    if (!this.#effects.has('other') && this.#goto === undefined) rule.appliesTo = new Set([...this.#effects].filter((e) => e !== 'other') as ('devnode' | 'netif')[]);
    return rule;
  }

  #at(t: UdevToken): SourceLocation {
    return { file: this.#file, line: t.line, column: t.column };
  }

  #error(t: UdevToken, message: string): never {
    this.#diagnostics.push({ severity: 'error', at: this.#at(t), message: `${t.text}: ${message}; rule ignored`, recovered: true });
    throw new LineError(message);
  }

  #warn(t: UdevToken, message: string): void {
    this.#diagnostics.push({ severity: 'warning', at: this.#at(t), message: `${t.text}: ${message}` });
  }

  #template(t: UdevToken, text: string): Template {
    return compileTemplate(text, { lenient: true, style: UDEV_STYLE });
  }

  #matcher(t: UdevToken, options: { subsystemKey?: boolean; alternatives?: boolean } = {}) {
    return compileUdevMatcher(t.value, { negate: t.op === '!=', caseInsensitive: t.caseInsensitive, ...options });
  }

  #condition(order: number, condition: Condition): void {
    this.#compiled.push({ order, condition });
  }

  #assign(order: number, assignment: Assignment, effect: 'devnode' | 'netif' | 'other' = 'other'): void {
    this.#compiled.push({ order, assignment });
    this.#effects.add(effect);
  }

  #noAttr(t: UdevToken): void {
    if (t.attr !== undefined) this.#error(t, `${t.key} takes no {attribute}`);
  }

  #needAttr(t: UdevToken): string {
    if (t.attr === undefined || t.attr === '') this.#error(t, `${t.key} needs an {attribute}`);
    return t.attr;
  }

  #matchOnly(t: UdevToken): void {
    if (t.op !== '==' && t.op !== '!=') this.#error(t, `${t.key} is a match key: it takes == or !=`);
  }

  #token(t: UdevToken): void {
    const isMatch = t.op === '==' || t.op === '!=';
    if (!isMatch && t.caseInsensitive) this.#error(t, 'the i"..." prefix is for == and != only');
    const at = this.#at(t);
    const key = t.text;
    switch (t.key) {
      case 'ACTION':
      case 'DEVPATH':
      case 'KERNEL':
      case 'SUBSYSTEM':
      case 'DRIVER': {
        this.#noAttr(t);
        this.#matchOnly(t);
        const field = t.key.toLowerCase() as 'action' | 'devpath' | 'kernel' | 'subsystem' | 'driver';
        if (t.key === 'SUBSYSTEM' && (t.value === 'bus' || t.value === 'class')) this.#warn(t, `write "subsystem" instead of "${t.value}"`);
        this.#condition(ORDER[t.key], { kind: 'field', key, at, field, matcher: this.#matcher(t, { subsystemKey: t.key === 'SUBSYSTEM' }) });
        return;
      }
      case 'SYMLINK':
        this.#noAttr(t);
        if (isMatch) return this.#condition(ORDER.SYMLINK_MATCH, { kind: 'links', key, at, matcher: this.#matcher(t) });
        return this.#assign(
          ORDER.SYMLINK,
          { kind: 'symlink', at, op: t.op === '+=' ? 'add' : t.op === '-=' ? 'remove' : 'reset', value: this.#template(t, t.value), escape: 'string-escape', needsDevnode: true, final: t.op === ':=' },
          'devnode',
        );
      case 'NAME':
        this.#noAttr(t);
        if (isMatch) return this.#condition(ORDER.NAME_MATCH, { kind: 'name', key, at, matcher: this.#matcher(t) });
        if (t.op === '-=') this.#error(t, 'NAME takes ==, !=, = or :=');
        if (t.op === '+=') this.#warn(t, 'NAME takes ==, !=, = or :=; "+=" is read as "="');
        if (t.value === '%k' || t.value === '$kernel') this.#error(t, 'NAME="%k" has no effect');
        if (t.value === '') this.#error(t, 'NAME="" has no effect: interfaces are never deleted');
        return this.#assign(ORDER.NAME, { kind: 'name', at, value: this.#template(t, t.value), escape: 'string-escape', final: t.op === ':=' }, 'netif');
      case 'ENV': {
        const name = this.#needAttr(t);
        // udev's DEVNAME is the node's path (/dev/sdb1), not the kernel's name.
        if (isMatch) return this.#condition(ORDER.ENV_MATCH, { kind: 'env', key, at, name, matcher: this.#matcher(t), ...(name === 'DEVNAME' ? { devname: 'devnode' as const } : {}) });
        if (t.op === '-=') this.#error(t, 'ENV takes ==, !=, = or +=');
        if (t.op === ':=') this.#warn(t, 'ENV takes ==, !=, = or +=; ":=" is read as "="');
        if (READ_ONLY_PROPERTIES.has(name)) this.#error(t, `the property ${name} cannot be set`);
        // As udev: ENV{X}="" unsets X; ENV{X}+="" does nothing.
        if (t.value === '' && t.op === '+=') return void this.#effects.add('other');
        const op = t.value === '' ? 'remove' : t.op === '+=' ? 'append' : 'set';
        return this.#assign(ORDER.ENV, { kind: 'env', at, op, name, value: this.#template(t, t.value), emptyValue: 'kept' });
      }
      case 'CONST': {
        const name = t.attr;
        if (name !== 'arch' && name !== 'virt' && name !== 'cvm') return this.#error(t, 'CONST takes {arch}, {virt} or {cvm}');
        this.#matchOnly(t);
        return this.#condition(ORDER.CONST, { kind: 'const', key, at, name, matcher: this.#matcher(t) });
      }
      case 'TAG':
        this.#noAttr(t);
        if (isMatch) return this.#condition(ORDER.TAG_MATCH, { kind: 'tag', key, at, matcher: this.#matcher(t) });
        if (t.op === ':=') this.#warn(t, 'TAG takes ==, !=, =, += or -=; ":=" is read as "="');
        if (t.value === '') this.#warn(t, 'empty tag');
        return this.#assign(ORDER.TAG, { kind: 'tag', at, op: t.op === '+=' ? 'add' : t.op === '-=' ? 'remove' : 'set', value: this.#template(t, t.value), escape: 'string-escape' });
      case 'ATTR':
      case 'SYSCTL': {
        const name = this.#needAttr(t);
        if (isMatch) {
          if (t.key === 'ATTR') return this.#condition(ORDER.ATTR_MATCH, { kind: 'attr', key, at, name, matcher: this.#matcher(t), absent: 'fails', trim: !/\s$/.test(t.value) });
          return this.#condition(ORDER.SYSCTL_MATCH, { kind: 'sysctl', key, at, name: this.#template(t, name), matcher: this.#matcher(t) });
        }
        if (t.op === '-=') this.#error(t, `${t.key} takes ==, != or =`);
        if (t.op !== '=') this.#warn(t, `${t.key} takes ==, != or =; "${t.op}" is read as "="`);
        if (t.key === 'SYSCTL') return this.#assign(ORDER.SYSCTL, { kind: 'sysctl', at, name: this.#template(t, name), value: this.#template(t, t.value) });
        return this.#assign(ORDER.ATTR, { kind: 'attr', at, name: this.#template(t, name), value: this.#template(t, t.value), escape: 'string-escape' });
      }
      case 'KERNELS':
      case 'SUBSYSTEMS':
      case 'DRIVERS':
      case 'ATTRS':
      case 'TAGS': {
        this.#matchOnly(t);
        let parent: ParentCondition;
        if (t.key === 'ATTRS') {
          const name = this.#needAttr(t);
          if (name.startsWith('device/')) this.#warn(t, 'the "device" link may not exist in future kernels');
          parent = { kind: 'attr', key, at, name, matcher: this.#matcher(t), absent: 'fails', trim: !/\s$/.test(t.value) };
        } else {
          this.#noAttr(t);
          parent =
            t.key === 'TAGS'
              ? { kind: 'tag', key, at, matcher: this.#matcher(t) }
              : { kind: 'field', key, at, field: t.key === 'KERNELS' ? 'kernel' : t.key === 'SUBSYSTEMS' ? 'subsystem' : 'driver', matcher: this.#matcher(t) };
        }
        this.#compiled.push({ order: ORDER.PARENTS, parent, parentOrder: PARENT_ORDER[t.key] });
        return;
      }
      case 'TEST': {
        let mode: number | undefined;
        if (t.attr !== undefined && t.attr !== '') {
          if (!/^[0-7]{1,4}$/.test(t.attr)) this.#error(t, `"${t.attr}" is not an octal mode`);
          mode = Number.parseInt(t.attr, 8);
        }
        this.#matchOnly(t);
        if (t.caseInsensitive) this.#error(t, 'TEST takes no i"..." prefix');
        if (t.value === '') this.#warn(t, 'empty path');
        const condition: Condition = { kind: 'exists', key, at, path: this.#template(t, t.value), expect: t.op === '==' };
        if (mode !== undefined) condition.mode = mode;
        return this.#condition(ORDER.TEST, condition);
      }
      case 'PROGRAM':
        this.#noAttr(t);
        if (t.op === '-=') this.#error(t, 'PROGRAM takes ==, != or =');
        if (t.value === '') this.#warn(t, 'empty command');
        this.#effects.add('other');
        return this.#condition(ORDER.PROGRAM, {
          kind: 'import', key, at, expect: t.op !== '!=',
          import: { source: 'program', command: { line: this.#template(t, t.value) }, output: 'result', timeoutMs: undefined, exitIsMatch: true },
        });
      case 'IMPORT': {
        const source = this.#needAttr(t);
        if (t.op === '-=') this.#error(t, 'IMPORT takes ==, != or =');
        if (t.value === '') this.#warn(t, 'empty value');
        const expect = t.op !== '!=';
        const builtinName = t.value.split(/\s/)[0] ?? '';
        const found = findBuiltin(builtinName);
        const value = this.#template(t, t.value);
        let spec: ImportSpec;
        if (source === 'builtin' && found === undefined) this.#error(t, `unknown builtin "${builtinName}"`);
        if ((source === 'program' || source === 'builtin') && found !== undefined) spec = { source: 'builtin', builtin: found, command: value };
        else if (source === 'program') spec = { source: 'program', command: { line: value }, output: 'properties', timeoutMs: undefined, exitIsMatch: true };
        else if (source === 'file' || source === 'db' || source === 'cmdline' || source === 'parent') spec = { source, value };
        else return this.#error(t, 'IMPORT takes {program}, {builtin}, {file}, {db}, {cmdline} or {parent}');
        this.#effects.add('other');
        const order = { file: ORDER.IMPORT_FILE, program: ORDER.IMPORT_PROGRAM, builtin: ORDER.IMPORT_BUILTIN, db: ORDER.IMPORT_DB, cmdline: ORDER.IMPORT_CMDLINE, parent: ORDER.IMPORT_PARENT }[spec.source];
        return this.#condition(order, { kind: 'import', key, at, import: spec, expect });
      }
      case 'RESULT':
        this.#noAttr(t);
        this.#matchOnly(t);
        return this.#condition(ORDER.RESULT, { kind: 'result', key, at, matcher: this.#matcher(t) });
      case 'OPTIONS':
        return this.#options(t, at);
      case 'OWNER':
      case 'GROUP':
        return this.#account(t, at);
      case 'MODE': {
        this.#noAttr(t);
        if (isMatch || t.op === '-=') this.#error(t, 'MODE takes = or :=');
        if (t.op === '+=') this.#warn(t, 'MODE takes = or :=; "+=" is read as "="');
        const final = t.op === ':=';
        if (/^[0-7]{1,4}$/.test(t.value)) return this.#assign(ORDER.MODE, { kind: 'mode', at, mode: Number.parseInt(t.value, 8), final }, 'devnode');
        return this.#assign(ORDER.MODE, { kind: 'mode', at, template: this.#template(t, t.value), final }, 'devnode');
      }
      case 'SECLABEL': {
        const module = this.#needAttr(t);
        if (isMatch || t.op === '-=') this.#error(t, 'SECLABEL takes = or +=');
        return this.#assign(ORDER.SECLABEL, { kind: 'seclabel', at, op: t.op === '+=' ? 'add' : 'set', module, value: this.#template(t, t.value) });
      }
      case 'RUN': {
        if (isMatch || t.op === '-=') this.#error(t, 'RUN takes =, += or :=');
        if (t.value === '') this.#warn(t, 'empty command');
        const isBuiltin = t.attr === 'builtin';
        if (t.attr !== undefined && t.attr !== 'program' && !isBuiltin) this.#error(t, 'RUN takes {program} or {builtin}');
        const name = t.value.split(/\s/)[0] ?? '';
        const found = isBuiltin ? findBuiltin(name) : undefined;
        if (isBuiltin && found === undefined) this.#error(t, `unknown builtin "${name}"`);
        const run: Assignment = { kind: 'run', at, command: { line: this.#template(t, t.value) }, timeoutMs: undefined, reset: t.op === '=' || t.op === ':=', final: t.op === ':=' };
        if (found !== undefined) run.builtin = found;
        return this.#assign(isBuiltin ? ORDER.RUN_BUILTIN : ORDER.RUN, run);
      }
      case 'GOTO':
        this.#noAttr(t);
        if (t.op !== '=') this.#error(t, 'GOTO takes =');
        if (this.#goto !== undefined) return this.#warn(t, 'a rule has one GOTO; this one is ignored');
        this.#goto = t.value;
        return;
      case 'LABEL':
        this.#noAttr(t);
        if (t.op !== '=') this.#error(t, 'LABEL takes =');
        if (this.#label !== undefined) this.#warn(t, `a rule has one LABEL; "${this.#label}" is replaced`);
        this.#label = t.value;
        return;
      default:
        return this.#error(t, `unknown key "${t.key}"`);
    }
  }

  #options(t: UdevToken, at: SourceLocation): void {
    this.#noAttr(t);
    if (t.op === '==' || t.op === '!=' || t.op === '-=') this.#error(t, 'OPTIONS takes =, += or :=');
    const value = t.value;
    const final = t.op === ':=';
    if (value === 'string_escape=none' || value === 'string_escape=replace') {
      return this.#assign(ORDER.OPTIONS, { kind: 'escape', at, escape: value === 'string_escape=none' ? 'none' : 'replace' });
    }
    const priority = /^link_priority=(-?\d+)$/.exec(value);
    if (priority) return this.#assign(ORDER.LINK_PRIORITY, { kind: 'link-priority', at, priority: Number(priority[1]) });
    if (value.startsWith('link_priority=')) this.#error(t, `"${value}": the link priority must be an integer`);
    if (value === 'db_persist' || value === 'watch' || value === 'nowatch' || value === 'dump') {
      return this.#assign(ORDER.OPTIONS, { kind: 'option', at, option: value, final });
    }
    const withValue = /^(static_node|log_level)=(.*)$/.exec(value);
    if (withValue) {
      const option = withValue[1] as 'static_node' | 'log_level';
      if (option === 'log_level' && !/^(reset|emerg|alert|crit|err|warning|notice|info|debug|[0-7])$/.test(withValue[2] as string)) {
        this.#error(t, `"${withValue[2]}" is not a log level`);
      }
      return this.#assign(option === 'static_node' ? ORDER.STATIC_NODE : ORDER.OPTIONS, { kind: 'option', at, option, value: withValue[2] as string, final });
    }
    this.#warn(t, `unknown option "${value}"; ignored`);
  }

  #account(t: UdevToken, at: SourceLocation): void {
    this.#noAttr(t);
    if (t.op === '==' || t.op === '!=' || t.op === '-=') this.#error(t, `${t.key} takes = or :=`);
    if (t.op === '+=') this.#warn(t, `${t.key} takes = or :=; "+=" is read as "="`);
    const kind = t.key === 'OWNER' ? 'owner' : 'group';
    const final = t.op === ':=';
    const order = kind === 'owner' ? ORDER.OWNER : ORDER.GROUP;
    if (/[$%]/.test(t.value)) return this.#assign(order, { kind, at, name: this.#template(t, t.value), final }, 'devnode');
    const account = kind === 'owner' ? this.#accounts.user(t.value) : this.#accounts.group(t.value);
    if (account === undefined) {
      // As udev: the rule stays, this assignment does nothing.
      this.#effects.add('devnode');
      return this.#warn(t, `unknown ${kind === 'owner' ? 'user' : 'group'} "${t.value}"; ignored`);
    }
    this.#assign(order, { kind, at, account, final }, 'devnode');
  }
}
