// What udev rules mean where they differ from hotplugd's own: substitutions ($id and
// $driver follow the parent the rules matched, $attr values are sanitised), TEST paths,
// and the assignments with udev's escaping, final values and per-rule options.
import type { DeviceView } from '../uevent/sysfs.js';
import { builtin } from '../builtins/registry.js';
import type { BuiltinContext, BuiltinOutcome } from '../rules/builtin.js';
import type { EvaluationInput } from './evaluate.js';
import { expandTemplate, type SubstitutionName, type SubstitutionSource, type Template } from '../rules/format.js';
import type { Assignment, Condition, DeviceField } from '../rules/model.js';
import { isNetName, isSafeRelativePath } from '../text/names.js';
import type { Plan } from '../rules/plan.js';
import type { SystemView } from '../rules/system-view.js';
import { ALLOWED_IN_INPUT, isValidTag, normalizeDevlink, replaceChars, splitCommand } from '../text/escape.js';

/** The evaluation state udev semantics read and change (implemented by the evaluator). */
export interface UdevState extends SubstitutionSource {
  readonly input: EvaluationInput;
  readonly system: SystemView;
  readonly device: DeviceView | undefined;
  readonly devRoot: string;
  readonly event: EvaluationInput['event'];
  readonly kernel: string;
  readonly properties: Record<string, string>;
  readonly plan: Plan;
  readonly hasDevnode: boolean;
  links: string[];
  tags: Set<string>;
  matchedParent: DeviceView | undefined;
  result: string | undefined;
  escape: 'unset' | 'none' | 'replace';
  field(field: DeviceField): string | undefined;
  writableProperties(): Record<string, string>;
  claimFinal(kind: string, final: boolean | undefined): boolean;
  addModule(alias: string, rule: string): void;
}

/** Where udev finds programs named without a path. */
export const UDEV_PROGRAM_DIR = '/usr/lib/udev';

export function programPath(name: string, dir = UDEV_PROGRAM_DIR): string {
  return name.startsWith('/') ? name : `${dir}/${name}`;
}

/** Expands a template; with `spaces`, whitespace inside each substituted value becomes `_` (not in $result). */
export function udevExpand(template: Template, state: UdevState, spaces = false): string {
  return expandTemplate(template, state, spaces ? 'spaces' : 'none');
}

/** `[subsystem/sysname]rest` → the sysfs path of that device followed by rest. */
function classPath(system: SystemView, text: string): string | undefined {
  const match = /^\[([^/\]]+)\/([^\]]+)\](.*)$/.exec(text);
  if (!match) return undefined;
  const dir = system.classDevice(match[1] as string, match[2] as string);
  if (dir === undefined) return undefined;
  const rest = match[3] as string;
  return rest === '' ? dir : `${dir}/${rest.replace(/^\//, '')}`;
}

export function udevLookup(state: UdevState, name: SubstitutionName, arg: string | undefined): string {
  const parent = state.matchedParent;
  switch (name) {
    case 'kernel':
      return state.kernel;
    case 'number':
      return /\d*$/.exec(state.kernel)?.[0] ?? '';
    case 'devpath':
      return state.event.devpath;
    case 'id':
      return parent?.kernel ?? '';
    case 'driver':
      if (parent === undefined) return '';
      return (parent === state.device ? state.field('driver') : parent.driver) ?? '';
    case 'attr':
      return attribute(state, arg ?? '');
    case 'env':
      return state.properties[arg ?? ''] ?? '';
    case 'major':
      return state.properties.MAJOR ?? '0';
    case 'minor':
      return state.properties.MINOR ?? '0';
    case 'result':
      return state.result ?? '';
    case 'parent':
      return state.device?.parents()[0]?.properties().DEVNAME ?? '';
    case 'name':
      return state.plan.name ?? state.properties.DEVNAME ?? state.kernel;
    case 'links':
      return state.links.join(' ');
    case 'root':
      return '/dev';
    case 'sys':
      return '/sys';
    case 'devnode':
      return state.plan.devnode ?? '';
  }
}

function attribute(state: UdevState, name: string): string {
  let value: string | undefined;
  if (name.startsWith('[')) {
    const path = classPath(state.system, name);
    value = path === undefined ? undefined : state.system.readFile(path)?.replace(/\n$/, '');
  } else {
    value = state.device?.attribute(name);
    const parent = state.matchedParent;
    if (value === undefined && parent !== undefined && parent !== state.device) value = parent.attribute(name);
  }
  return value === undefined ? '' : replaceChars(value.trimEnd(), ALLOWED_IN_INPUT);
}

/** udev's TEST: a path relative to the device (or `[subsystem/sysname]`), a `*` directory component, and an optional mode. */
export function udevTest(state: UdevState, condition: Extract<Condition, { kind: 'exists' }>): boolean {
  const system = state.system;
  let path = udevExpand(condition.path, state);
  if (!path.startsWith('/')) path = classPath(system, path) ?? `${system.sysfsRoot}${state.event.devpath}/${path}`;
  const star = path.indexOf('/*/');
  if (star >= 0) {
    const dir = path.slice(0, star);
    const rest = path.slice(star + 2);
    const found = system.list(dir).find((entry) => !entry.startsWith('.') && system.mode(`${dir}/${entry}${rest}`) !== undefined);
    if (found === undefined) return !condition.expect;
    path = `${dir}/${found}${rest}`;
  }
  const mode = system.mode(path);
  if (mode === undefined) return !condition.expect;
  if (condition.mode === undefined) return condition.expect;
  return (mode & condition.mode) > 0 === condition.expect;
}

/** udev's sysctl_normalize: `net.ipv4.ip_forward` → `net/ipv4/ip_forward` (dots and slashes swap when a dot comes first). */
export function normalizeSysctl(name: string): string {
  const first = name.search(/[./]/);
  if (first < 0 || name[first] === '/') return name;
  return name.replace(/[./]/g, (c) => (c === '.' ? '/' : '.'));
}

export function builtinContext(state: UdevState): BuiltinContext {
  return { device: state.device, devpath: state.event.devpath, subsystem: state.event.subsystem, action: state.event.action, properties: state.properties, devnode: state.plan.devnode };
}

/** Runs an in-process builtin; a builtin that needs a program returns it instead. */
export function runBuiltin(state: UdevState, argv: string[]): BuiltinOutcome {
  const found = builtin(argv[0] ?? '');
  if (found === undefined) return { failed: `unknown builtin "${argv[0] ?? ''}"` };
  try {
    return found.run(argv, builtinContext(state));
  } catch (error) {
    return { failed: `builtin ${found.name} failed: ${(error as Error).message}` };
  }
}

function resolveAccount(state: UdevState, kind: 'owner' | 'group', name: string) {
  const found = kind === 'owner' ? state.input.accounts?.user(name) : state.input.accounts?.group(name);
  if (found) return found;
  return /^\d+$/.test(name) ? { name, id: Number(name) } : undefined;
}

export function applyUdevAssignment(state: UdevState, a: Assignment, origin: () => string): void {
  const plan = state.plan;
  const warn = (message: string): void => {
    plan.warnings.push(`${origin()}: ${message}`);
  };
  switch (a.kind) {
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
      if (!state.claimFinal(a.kind, a.final)) return;
      if ('account' in a) {
        plan[a.kind] = a.account;
        return;
      }
      const name = udevExpand(a.name, state);
      const account = resolveAccount(state, a.kind, name);
      if (account) plan[a.kind] = account;
      else warn(`unknown ${a.kind === 'owner' ? 'user' : 'group'} "${name}"; ignored`);
      return;
    }
    case 'mode': {
      if (!state.claimFinal('mode', a.final)) return;
      if ('mode' in a) {
        plan.mode = a.mode;
        return;
      }
      const text = udevExpand(a.template, state);
      if (/^[0-7]{1,4}$/.test(text)) plan.mode = Number.parseInt(text, 8);
      else warn(`"${text}" is not a mode; ignored`);
      return;
    }
    case 'tag': {
      const tag = udevExpand(a.value, state);
      if (a.op === 'remove') {
        state.tags.delete(tag);
        return;
      }
      if (a.op === 'set') state.tags.clear();
      if (isValidTag(tag)) state.tags.add(tag);
      else warn(`refused tag "${tag}": tags are letters, digits, "-" and "_"`);
      return;
    }
    case 'seclabel':
      warn(`SECLABEL{${a.module}}: security labels are not applied by hotplugd`);
      return;
    case 'env': {
      const properties = state.writableProperties();
      if (a.value.source === '') {
        if (a.op !== 'append') delete properties[a.name];
        return;
      }
      let value = udevExpand(a.value, state);
      if (state.escape === 'replace') value = replaceChars(value);
      const old = properties[a.name];
      properties[a.name] = a.op === 'append' && old !== undefined ? `${old} ${value}` : value;
      return;
    }
    case 'name': {
      if (!state.claimFinal('name', a.final)) return;
      if (state.properties.IFINDEX === undefined) {
        warn('NAME renames only network interfaces; ignored');
        return;
      }
      let name = udevExpand(a.value, state);
      if (state.escape !== 'none') name = replaceChars(name, '/');
      if (isNetName(name)) plan.name = name;
      else warn(`refused interface name "${name}"`);
      return;
    }
    case 'symlink': {
      if (!state.claimFinal('symlink', false) || !state.hasDevnode) return;
      if (a.final) state.claimFinal('symlink', true);
      if (a.op === 'reset') state.links = [];
      let text = udevExpand(a.value, state, state.escape !== 'none');
      if (state.escape === 'unset') text = replaceChars(text, '/ ');
      else if (state.escape === 'replace') text = replaceChars(text, '/');
      for (const word of text.split(/[ \t\n\r]+/)) {
        if (word === '') continue;
        const link = normalizeDevlink(word);
        if (link === undefined) warn(`refused symlink "${word}": it must be a path below /dev without ".."`);
        else if (a.op === 'remove') state.links = state.links.filter((l) => l !== link);
        else if (!state.links.includes(link)) state.links.push(link);
      }
      return;
    }
    case 'attr': {
      const name = udevExpand(a.name, state);
      if (!isSafeRelativePath(name)) warn(`refused attribute path "${name}": only attributes of the device itself can be written`);
      else plan.attrs.push({ name, value: udevExpand(a.value, state), rule: origin() });
      return;
    }
    case 'sysctl': {
      const name = normalizeSysctl(udevExpand(a.name, state));
      if (!isSafeRelativePath(name)) warn(`refused kernel parameter "${name}"`);
      else plan.sysctls.push({ name, value: udevExpand(a.value, state), rule: origin() });
      return;
    }
    case 'run-command': {
      if (!state.claimFinal('run', a.final)) return;
      if (a.reset) {
        plan.run = [];
        plan.modules = [];
      }
      const argv = splitCommand(udevExpand(a.command, state));
      if (argv.length === 0) return;
      if (a.builtin) {
        const outcome = runBuiltin(state, argv);
        if ('modules' in outcome) for (const alias of outcome.modules) state.addModule(alias, origin());
        else if ('failed' in outcome) warn(outcome.failed);
        else if ('program' in outcome) plan.run.push({ argv: outcome.program, timeoutMs: undefined, rule: origin() });
        return;
      }
      argv[0] = programPath(argv[0] as string, state.input.programDir);
      plan.run.push({ argv, timeoutMs: undefined, rule: origin() });
      return;
    }
    default:
      warn(`"${a.kind}" is not part of the udev rule language; ignored`);
  }
}
