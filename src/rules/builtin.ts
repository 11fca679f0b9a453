// What a builtin (udev's IMPORT{builtin} / RUN{builtin} commands) sees and returns.
import type { DeviceView } from '../uevent/sysfs.js';

export interface BuiltinContext {
  /** The event's device; undefined when it is gone (remove). */
  device: DeviceView | undefined;
  devpath: string;
  subsystem: string;
  action: string;
  /** The event's properties as the rules have them so far. */
  properties: Readonly<Record<string, string>>;
  /** The device node (`<dev root>/<DEVNAME>`), or null. */
  devnode: string | null;
}

/** What a builtin asks for. */
export type BuiltinOutcome =
  /**
   * Properties to merge into the event (IMPORT{builtin} succeeds); net_setup_link also plans
   * the interface's MAC address and alternative names.
   */
  | { properties: Record<string, string>; interface?: { mac: string | null; altnames: string[] } }
  /**
   * Run this program and merge its KEY=VALUE output, as IMPORT{program} would; an exit
   * status in `emptyExitCodes` means "nothing found", not a failure (blkid's 2).
   */
  | { program: string[]; emptyExitCodes?: readonly number[]; keep?: (name: string) => boolean }
  /** Load kernel modules by alias (RUN{builtin}="kmod load ..."). */
  | { modules: string[] }
  /** It failed or does not apply, and why; `unsupported` when hotplugd cannot do what it asks. */
  | { failed: string; unsupported?: boolean };

export interface Builtin {
  name: string;
  summary: string;
  /** `argv[0]` is the builtin's name, as in udev. */
  run(argv: string[], context: BuiltinContext): BuiltinOutcome;
}
