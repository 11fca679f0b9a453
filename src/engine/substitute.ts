// The one substitution table (`$kernel`, `$attr{...}`, ...), and the one way a rule asks
// whether a file exists. Where rule languages differ, the template's style (chosen when
// the rule was compiled) says which meaning applies.
import type { Uevent } from '../uevent/event.js';
import type { DeviceView } from '../uevent/sysfs.js';
import type { SubstitutionName, TemplateStyle } from '../rules/format.js';
import type { DeviceField } from '../rules/model.js';
import type { Plan } from '../rules/plan.js';
import type { SystemView } from '../rules/system-view.js';
import { ALLOWED_IN_INPUT, replaceChars } from '../text/escape.js';

/** What substitutions and file tests read of an evaluation (its state implements it). */
export interface EvaluationContext {
  readonly event: Uevent;
  readonly device: DeviceView | undefined;
  readonly system: SystemView;
  readonly devRoot: string;
  readonly kernel: string;
  readonly properties: Record<string, string>;
  readonly plan: Plan;
  readonly links: readonly string[];
  readonly matchedParent: DeviceView | undefined;
  readonly result: string | undefined;
  field(field: DeviceField): string | undefined;
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

export function lookupSubstitution(state: EvaluationContext, name: SubstitutionName, arg: string | undefined, style: TemplateStyle): string {
  const parent = style.parentOf === 'matched' ? state.matchedParent : (state.matchedParent ?? state.device);
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
      if (parent === undefined) return style.parentOf === 'matched' ? '' : (state.field('driver') ?? '');
      return (parent === state.device ? state.field('driver') : parent.driver) ?? '';
    case 'attr':
      return attribute(state, arg ?? '', style);
    case 'env':
      if (arg === 'DEVNAME' && style.devname === 'devnode' && state.properties.DEVNAME !== undefined) return state.plan.devnode ?? '';
      return state.properties[arg ?? ''] ?? '';
    case 'major':
      return state.properties.MAJOR ?? style.missingNumber;
    case 'minor':
      return state.properties.MINOR ?? style.missingNumber;
    case 'result':
      return state.result ?? '';
    case 'parent':
      return state.device?.parents()[0]?.properties().DEVNAME ?? '';
    case 'name':
      return state.plan.name ?? state.properties.DEVNAME ?? state.kernel;
    case 'links':
      return state.links.join(' ');
    case 'root':
      return state.devRoot;
    case 'sys':
      return state.system.sysfsRoot;
    case 'devnode':
      return state.plan.devnode ?? '';
  }
}

// The device's attribute; missing there, the parent a `parent` condition selected, and
// (by the style) with no such parent the nearest ancestor that has it. `[subsystem/sysname]attr`
// reads another device's.
function attribute(state: EvaluationContext, name: string, style: TemplateStyle): string {
  let value: string | undefined;
  if (name.startsWith('[')) {
    const path = classPath(state.system, name);
    value = path === undefined ? undefined : state.system.readFile(path)?.replace(/\n$/, '');
  } else if (state.device !== undefined) {
    const device = state.device;
    value = device.attribute(name);
    const matched = state.matchedParent;
    if (value === undefined && matched !== undefined) {
      if (matched !== device) value = matched.attribute(name);
    } else if (value === undefined && style.attrFallback === 'ancestors') {
      for (const parent of device.parents()) if ((value = parent.attribute(name)) !== undefined) break;
    }
  }
  if (value === undefined) return '';
  return style.attrEscape === 'unsafe-replaced' ? replaceChars(value.trimEnd(), ALLOWED_IN_INPUT) : value.trimEnd();
}

/**
 * Whether `path` exists (with one of the `mode` bits when given): absolute, as
 * `[subsystem/sysname]path`, or relative to the device's sysfs directory; a `*` directory
 * component matches any entry not starting with a dot.
 */
export function fileExists(state: EvaluationContext, text: string, mode?: number): boolean {
  const system = state.system;
  let path = text;
  if (!path.startsWith('/')) path = classPath(system, path) ?? `${system.sysfsRoot}${state.event.devpath}/${path}`;
  const star = path.indexOf('/*/');
  if (star >= 0) {
    const dir = path.slice(0, star);
    const rest = path.slice(star + 2);
    const found = system.list(dir).find((entry) => !entry.startsWith('.') && system.mode(`${dir}/${entry}${rest}`) !== undefined);
    if (found === undefined) return false;
    path = `${dir}/${found}${rest}`;
  }
  const bits = system.mode(path);
  if (bits === undefined) return false;
  return mode === undefined || (bits & mode) > 0;
}
