// Asking the kernel to re-send events: writing an action to a device's `uevent` file.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fnmatchAny } from '../text/fnmatch.js';
import type { Sysfs } from './sysfs.js';

/** The actions a sysfs `uevent` file accepts. */
export const TRIGGER_ACTIONS = ['add', 'remove', 'change', 'move', 'online', 'offline', 'bind', 'unbind'] as const;
export type TriggerAction = (typeof TRIGGER_ACTIONS)[number];

export interface TriggerOptions {
  action: TriggerAction;
  /** Subsystem globs; a device matches if any matches. Empty: every device. */
  subsystems: string[];
  dryRun: boolean;
  /** Tags each event: the kernel echoes it back as SYNTH_UUID (Linux 4.13+). */
  uuid?: string;
}

export interface TriggerResult {
  devpath: string;
  error?: string;
}

/** The devices a trigger would touch, parents first. */
export function selectDevices(sysfs: Sysfs, subsystems: string[]): string[] {
  const matches = subsystems.length > 0 ? fnmatchAny(subsystems) : () => true;
  return sysfs.enumerate().filter((devpath) => matches(sysfs.subsystem(devpath) ?? ''));
}

/** Writes the action to each selected device's `uevent` file; one failure does not stop the rest. */
export function triggerDevices(sysfs: Sysfs, options: TriggerOptions): TriggerResult[] {
  return selectDevices(sysfs, options.subsystems).map((devpath) => {
    if (options.dryRun) return { devpath };
    try {
      writeFileSync(join(sysfs.pathOf(devpath)!, 'uevent'), options.uuid ? `${options.action} ${options.uuid}` : options.action);
      return { devpath };
    } catch (error) {
      return { devpath, error: (error as Error).message };
    }
  });
}
