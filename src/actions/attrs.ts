// Writing sysfs attributes a rule asked for: only files inside the device's own sysfs
// directory (after resolving links), each write its own result.
import { lstatSync, realpathSync, writeFileSync } from 'node:fs';
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

export function applyAttributes(sysfs: Sysfs, devpath: string, attrs: readonly PlannedAttr[]): ActionResult[] {
  return attrs.map((attr) =>
    attempt('attr', `${devpath}/${attr.name}`, attr.rule, () => {
      const base = sysfs.pathOf(devpath);
      if (base === null) throw new HotplugError('EOUTSIDE', `unsafe devpath ${devpath}`);
      const device = realpathSync(base);
      const path = `${base}/${attr.name}`;
      // The file itself may not exist yet in a test tree; its directory must resolve inside the device.
      const where = realpathSync(dirname(path));
      if (where !== device && !where.startsWith(device + sep)) throw new HotplugError('EOUTSIDE', `${attr.name} leads outside ${devpath}`);
      if (lstatSync(path, { throwIfNoEntry: false })?.isSymbolicLink()) throw new HotplugError('EOUTSIDE', `${attr.name} is a link`);
      writeFileSync(path, attr.value);
    }),
  );
}
