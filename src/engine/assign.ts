// What each assignment does to the plan, for rules of every language. Where languages
// differ, the assignment carries the meaning its front end chose (how names are escaped,
// whether an empty value unsets a property): nothing here asks where a rule came from.
import type { Template } from '../rules/format.js';
import { commandDevname, type Account, type Assignment, type NameEscape, type Rule } from '../rules/model.js';
import { isValidTag, normalizeDevlink, replaceChars, splitCommand } from '../text/escape.js';
import { isNetName, isSafeRelativePath, isUnitName } from '../text/names.js';
import { commandArgv, runBuiltin } from './imports.js';
import type { EvaluationState } from './state.js';

type Warn = (message: string) => void;

/** udev's `sysctl_normalize`: `net.ipv4.ip_forward` → `net/ipv4/ip_forward` (dots and slashes swap when a dot comes first). */
function normalizeSysctl(name: string): string {
  const first = name.search(/[./]/);
  if (first < 0 || name[first] === '/') return name;
  return name.replace(/[./]/g, (c) => (c === '.' ? '/' : '.'));
}

// A name or path from a template: each substituted value made a safe name component, or
// (udev) substituted as is and then escaped by the rule's string_escape option.
function expandName(state: EvaluationState, template: Template, escape: NameEscape, allow: string): string {
  if (escape === 'substitutions') return state.expand(template, 'path');
  const text = state.expand(template);
  return state.escape === 'none' ? text : replaceChars(text, allow);
}

function account(state: EvaluationState, kind: 'owner' | 'group', name: string): Account | undefined {
  const found = kind === 'owner' ? state.input.accounts?.user(name) : state.input.accounts?.group(name);
  if (found) return found;
  return /^\d+$/.test(name) ? { name, id: Number(name) } : undefined;
}

function symlinks(state: EvaluationState, a: Extract<Assignment, { kind: 'symlink' }>, warn: Warn): void {
  if (!state.claimFinal('symlink', false) || (a.needsDevnode && !state.hasDevnode)) return;
  if (a.final) state.claimFinal('symlink', true);
  if (a.op === 'reset') state.links = [];
  let text: string;
  if (a.escape === 'substitutions') text = state.expand(a.value, 'path');
  else {
    text = state.expand(a.value, state.escape !== 'none' ? 'spaces' : 'none');
    if (state.escape === 'unset') text = replaceChars(text, '/ ');
    else if (state.escape === 'replace') text = replaceChars(text, '/');
  }
  // One value may hold several links separated by whitespace.
  for (const word of text.split(/[ \t\n\r]+/)) {
    if (word === '') continue;
    const link = a.escape === 'string-escape' ? normalizeDevlink(word) : isSafeRelativePath(word) ? word : undefined;
    if (link === undefined) warn(`refused symlink "${word}": it must be a path below ${state.devRoot} without ".."`);
    else if (a.op === 'remove') state.links = state.links.filter((l) => l !== link);
    else if (!state.links.includes(link)) state.links.push(link);
  }
}

function setProperty(state: EvaluationState, a: Extract<Assignment, { kind: 'env' }>): void {
  const properties = state.writableProperties();
  if (a.op === 'remove') {
    delete properties[a.name];
    return;
  }
  let value = state.expand(a.value);
  if (state.escape === 'replace') value = replaceChars(value);
  const old = properties[a.name];
  if (a.emptyValue === 'kept') properties[a.name] = a.op === 'append' && old !== undefined ? `${old} ${value}` : value;
  else {
    if (a.op === 'append' && old) value = value === '' ? old : `${old} ${value}`;
    if (value === '') delete properties[a.name];
    else properties[a.name] = value;
  }
}

/** Applies one assignment of a matched rule (imports are run by the engine loop). */
export function applyAssignment(state: EvaluationState, rule: Rule, a: Exclude<Assignment, { kind: 'import' }>): void {
  const plan = state.plan;
  const warn: Warn = (message) => state.warn(rule, a, message);
  if (a.kind === 'symlink') return symlinks(state, a, warn);
  if (a.kind !== 'option' && !state.claimFinal(a.kind, 'final' in a ? a.final : undefined)) return;
  switch (a.kind) {
    case 'env':
      return setProperty(state, a);
    case 'escape':
      state.escape = a.escape;
      return;
    case 'option':
      if (a.option === 'db_persist') plan.dbPersist = true;
      else if ((a.option === 'watch' || a.option === 'nowatch') && state.claimFinal('watch', a.final)) plan.watch = a.option === 'watch';
      return;
    case 'link-priority':
      plan.linkPriority = a.priority;
      return;
    case 'owner':
    case 'group': {
      if ('account' in a) {
        plan[a.kind] = a.account;
        return;
      }
      const name = state.expand(a.name);
      const found = account(state, a.kind, name);
      if (found) plan[a.kind] = found;
      else warn(`unknown ${a.kind === 'owner' ? 'user' : 'group'} "${name}"; ignored`);
      return;
    }
    case 'mode': {
      if ('mode' in a) {
        plan.mode = a.mode;
        return;
      }
      const text = state.expand(a.template);
      if (/^[0-7]{1,4}$/.test(text)) plan.mode = Number.parseInt(text, 8);
      else warn(`"${text}" is not a mode; ignored`);
      return;
    }
    case 'tag': {
      const tag = a.escape === 'string-escape' ? state.expand(a.value) : state.expand(a.value, 'path');
      if (a.op === 'remove') {
        state.tags.delete(tag);
        return;
      }
      if (a.op === 'set') state.tags.clear();
      const valid = a.escape === 'string-escape' ? isValidTag(tag) : tag !== '' && !tag.includes('/');
      if (valid) state.tags.add(tag);
      else warn(`refused tag "${tag}": tags are letters, digits, "-" and "_"`);
      return;
    }
    case 'seclabel':
      warn(`SECLABEL{${a.module}}: security labels are not applied by hotplugd`);
      return;
    case 'name': {
      if (state.properties.IFINDEX === undefined && state.event.subsystem !== 'net') {
        warn('"name" renames only network interfaces; ignored');
        return;
      }
      const name = expandName(state, a.value, a.escape, '/');
      if (isNetName(name)) plan.name = name;
      else warn(`refused interface name "${name}"`);
      return;
    }
    case 'attr': {
      const name = a.escape === 'string-escape' ? state.expand(a.name) : state.expand(a.name, 'path');
      if (!isSafeRelativePath(name)) warn(`refused attribute path "${name}": only attributes of the device itself can be written`);
      else plan.attrs.push({ name, value: state.expand(a.value), rule: state.origin(rule, a) });
      return;
    }
    case 'sysctl': {
      const name = normalizeSysctl(state.expand(a.name));
      if (!isSafeRelativePath(name)) warn(`refused kernel parameter "${name}"`);
      else plan.sysctls.push({ name, value: state.expand(a.value), rule: state.origin(rule, a) });
      return;
    }
    case 'run': {
      if (a.reset) {
        plan.run = [];
        plan.modules = [];
      }
      if (a.builtin !== undefined) {
        const argv = 'line' in a.command ? splitCommand(state.expand(a.command.line)) : a.command.argv.map((t) => state.expand(t));
        const outcome = runBuiltin(state, a.builtin, argv);
        if ('modules' in outcome) for (const alias of outcome.modules) state.addModule(alias, state.origin(rule, a));
        else if ('failed' in outcome) warn(outcome.failed);
        else if ('program' in outcome) plan.run.push({ argv: outcome.program, timeoutMs: undefined, rule: state.origin(rule, a) });
        return;
      }
      const argv = commandArgv(state, a.command, warn);
      if (argv !== undefined) plan.run.push({ argv, timeoutMs: a.timeoutMs, rule: state.origin(rule, a), ...(commandDevname(a.command) === 'devnode' ? { devnameAsNode: true } : {}) });
      return;
    }
    case 'module':
      state.addModule(state.expand(a.alias), state.origin(rule, a));
      return;
    case 'authorize':
      if (state.event.subsystem !== 'usb') warn('"authorize" applies to USB devices only; ignored');
      else plan.authorize = { allow: a.authorize, rule: state.origin(rule, a) };
      return;
    case 'job':
      plan.jobs.push({ argv: a.argv.map((t) => state.expand(t)), restart: a.restart, stopSignal: a.stopSignal, rule: state.origin(rule, a) });
      return;
    case 'unit': {
      const unit = state.expand(a.unit, 'path');
      // A unit name: systemd's characters only, so it cannot become an option or a path.
      if (isUnitName(unit)) plan.units.push({ unit, rule: state.origin(rule, a) });
      else warn(`refused systemd unit name "${unit}"`);
      return;
    }
  }
}
