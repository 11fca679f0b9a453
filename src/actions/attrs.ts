// Writing sysfs attributes a rule asked for: only files inside the device's own sysfs
// directory (after resolving links), each write its own result.
import { existsSync, lstatSync, readdirSync, realpathSync, writeFileSync } from 'node:fs';
import { dirname, sep } from 'node:path';
import { HotplugError } from '../errors.js';
import type { PlannedAttr } from '../rules/plan.js';
import type { Sysfs } from '../uevent/sysfs.js';
import { attempt, type ActionResult } from './results.js';

/**
 * USB authorization, USBGuard-style: `authorized` = 0 refuses the device (the kernel unbinds
 * its drivers), 1 allows it. Recorded as `refuse` or `authorize`.
 */
export function applyAuthorization(sysfs: Sysfs, devpath: string, decision: { allow: boolean; rule: string }): ActionResult {
  const [result] = applyAttributes(sysfs, devpath, [{ name: 'authorized', value: decision.allow ? '1' : '0', rule: decision.rule }]);
  return { ...(result as ActionResult), kind: decision.allow ? 'authorize' : 'refuse', target: devpath };
}

/**
 * udev's attr_subst_subdir: a `/*` in an attribute's name stands for the first entry of that
 * directory under which the rest of the name exists (`block/*\/uevent` of a SCSI device is
 * its disk's uevent file). The name as it is when nothing matches.
 */
export function expandSubdirectory(base: string, name: string): string {
  const star = name.indexOf('/*');
  if (star < 0) return name;
  const dir = name.slice(0, star);
  const tail = name.slice(star + 2);
  let entries: string[];
  try {
    entries = readdirSync(`${base}/${dir}`);
  } catch {
    return name;
  }
  const found = entries.find((entry) => !entry.startsWith('.') && existsSync(`${base}/${dir}/${entry}${tail}`));
  return found === undefined ? name : `${dir}/${found}${tail}`;
}

export function applyAttributes(sysfs: Sysfs, devpath: string, attrs: readonly PlannedAttr[]): ActionResult[] {
  return attrs.map((attr) =>
    attempt('attr', `${devpath}/${attr.name}`, attr.rule, () => {
      const base = sysfs.pathOf(devpath);
      if (base === null) throw new HotplugError('EOUTSIDE', `unsafe devpath ${devpath}`);
      const device = realpathSync(base);
      const path = `${base}/${expandSubdirectory(base, attr.name)}`;
      // The file itself may not exist yet in a test tree; its directory must resolve inside the device.
      const where = realpathSync(dirname(path));
      if (where !== device && !where.startsWith(device + sep)) throw new HotplugError('EOUTSIDE', `${attr.name} leads outside ${devpath}`);
      if (lstatSync(path, { throwIfNoEntry: false })?.isSymbolicLink()) throw new HotplugError('EOUTSIDE', `${attr.name} is a link`);
      writeFileSync(path, attr.value);
    }),
  );
}
