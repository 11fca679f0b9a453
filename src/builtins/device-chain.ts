// The device and its ancestors as builtins walk them, each with its subsystem and devtype
// (the event's own values for the device itself, sysfs for the ancestors).
import type { DeviceView } from '../uevent/sysfs.js';
import type { BuiltinContext } from '../rules/builtin.js';

export interface ChainLink {
  view: DeviceView;
  subsystem: string | undefined;
  devtype: string | undefined;
  /** The kernel name (udev's sysname). */
  name: string;
}

export function deviceChain(context: BuiltinContext): ChainLink[] {
  const device = context.device;
  if (device === undefined) return [];
  const self: ChainLink = { view: device, subsystem: context.subsystem, devtype: context.properties.DEVTYPE, name: device.kernel };
  return [self, ...device.parents().map((view) => ({ view, subsystem: view.subsystem, devtype: view.properties().DEVTYPE, name: view.kernel }))];
}

/** The index of the last link of a run of `subsystem` starting at `from` (udev's skip_subsystem). */
export function skipSubsystem(chain: ChainLink[], from: number, subsystem: string): number {
  let i = from;
  while (i + 1 < chain.length && chain[i + 1]?.subsystem === subsystem) i++;
  return i;
}
