// hotplugd's own rule language (YAML, and mdev.conf compiled to it): what each assignment
// does to the plan. Values from devices are escaped for paths and names here.
import { expandTemplate, type Template } from '../rules/format.js';
import type { Assignment } from '../rules/model.js';
import { isNetName, isSafeRelativePath, isUnitName } from '../text/names.js';
import type { ImportRequest } from './evaluate.js';
import type { UdevState } from './semantics.js';

export function applyNativeAssignment(state: UdevState, a: Assignment, origin: () => string): ImportRequest | undefined {
  if (!state.claimFinal(a.kind, 'final' in a ? a.final : undefined)) return undefined;
  switch (a.kind) {
    case 'env': {
      const properties = state.writableProperties();
      if (a.op === 'remove') delete properties[a.name];
      else {
        const old = properties[a.name];
        let value = expandTemplate(a.value, state);
        if (a.op === 'append' && old) value = value === '' ? old : `${old} ${value}`;
        // As in udev, an empty value unsets the property.
        if (value === '') delete properties[a.name];
        else properties[a.name] = value;
      }
      return undefined;
    }
    case 'symlink':
      symlink(state, a.op, a.value, origin);
      return undefined;
    case 'link-priority':
      state.plan.linkPriority = a.priority;
      return undefined;
    case 'name': {
      const name = expandTemplate(a.value, state, 'path');
      if (state.event.subsystem !== 'net') state.plan.warnings.push(`${origin()}: "name" renames only network interfaces; ignored`);
      else if (!isNetName(name)) state.plan.warnings.push(`${origin()}: refused interface name "${name}"`);
      else state.plan.name = name;
      return undefined;
    }
    case 'owner':
    case 'group':
      if ('account' in a) state.plan[a.kind] = a.account;
      return undefined;
    case 'mode':
      if ('mode' in a) state.plan.mode = a.mode;
      return undefined;
    case 'tag': {
      const tag = expandTemplate(a.value, state, 'path');
      if (tag === '' || tag.includes('/')) state.plan.warnings.push(`${origin()}: refused tag "${tag}"`);
      else if (a.op === 'remove') state.tags.delete(tag);
      else state.tags.add(tag);
      return undefined;
    }
    case 'attr': {
      const name = expandTemplate(a.name, state, 'path');
      if (!isSafeRelativePath(name)) state.plan.warnings.push(`${origin()}: refused attribute path "${name}"`);
      else state.plan.attrs.push({ name, value: expandTemplate(a.value, state), rule: origin() });
      return undefined;
    }
    case 'authorize':
      if (state.event.subsystem !== 'usb') state.plan.warnings.push(`${origin()}: "authorize" applies to USB devices only; ignored`);
      else state.plan.authorize = { allow: a.authorize, rule: origin() };
      return undefined;
    case 'job':
      state.plan.jobs.push({ argv: a.argv.map((t) => expandTemplate(t, state)), restart: a.restart, stopSignal: a.stopSignal, rule: origin() });
      return undefined;
    case 'unit': {
      const unit = expandTemplate(a.unit, state, 'path');
      // A unit name: systemd's characters only, so it cannot become an option or a path.
      if (isUnitName(unit)) state.plan.units.push({ unit, rule: origin() });
      else state.plan.warnings.push(`${origin()}: refused systemd unit name "${unit}"`);
      return undefined;
    }
    case 'module': {
      const alias = expandTemplate(a.alias, state);
      state.addModule(alias, origin());
      return undefined;
    }
    case 'run': {
      const argv = a.argv.map((t) => expandTemplate(t, state));
      if (!argv[0]?.startsWith('/')) {
        state.plan.warnings.push(`${origin()}: refused to run "${argv[0] ?? ''}": not an absolute path`);
        return undefined;
      }
      const entry = { argv, timeoutMs: a.timeoutMs, rule: origin() };
      if (!a.import) {
        state.plan.run.push(entry);
        return undefined;
      }
      return { ...entry, env: state.properties };
    }
    default:
      // udev-only assignments (escape, sysctl, seclabel, options, run-command) come from udev rules.
      state.plan.warnings.push(`${origin()}: "${a.kind}" is not supported in state rule language; ignored`);
      return undefined;
  }
}

function symlink(state: UdevState, op: 'add' | 'remove' | 'reset', template: Template, origin: () => string): void {
  if (op === 'reset') state.links = [];
  // As in udev, one value may hold several links separated by whitespace.
  for (const link of expandTemplate(template, state, 'path').split(/\s+/)) {
    if (link === '') continue;
    if (!isSafeRelativePath(link)) {
      state.plan.warnings.push(`${origin()}: refused symlink "${link}": it would leave ${state.devRoot} or is too long`);
      continue;
    }
    if (op === 'remove') state.links = state.links.filter((l) => l !== link);
    else if (!state.links.includes(link)) state.links.push(link);
  }
}
