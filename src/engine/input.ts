// What an evaluation is given, and how it asks its caller for a program's output.
import type { Uevent } from '../uevent/event.js';
import type { DeviceView } from '../uevent/sysfs.js';
import type { Accounts } from '../os/accounts.js';
import type { DeviceDatabase, SystemView } from '../rules/system-view.js';

export interface EvaluationInput {
  event: Uevent;
  /** The device in sysfs; undefined (or a view of a vanished directory) on remove. */
  device: DeviceView | undefined;
  /** Where device nodes and symlinks live (default /dev). */
  devRoot?: string;
  /** Files, kernel parameters, constants and `[subsystem/name]` devices; `$sys` is its sysfs root (default: nothing visible). */
  system?: SystemView;
  /** What hotplugd recorded for devices at their last event (udev's database): IMPORT{db}, IMPORT{parent}, TAGS. */
  database?: DeviceDatabase;
  /** For OWNER and GROUP values that are substituted per event. */
  accounts?: Accounts;
  /** Where programs named without a path (in command lines) are found (default /usr/lib/udev). */
  programDir?: string;
  /**
   * `all` (the default, for dry runs) looks at every rule, skipping the index, and traces
   * each with the key that failed; `matched` (the daemon's path) uses the index and traces
   * only the rules that matched. Both give the same plan.
   */
  trace?: 'all' | 'matched';
}

/** A program whose output the rules want before they go on. */
export interface ImportRequest {
  argv: string[];
  /** The event's properties at this point of the rules: the program's environment. */
  env: Record<string, string>;
  timeoutMs: number | undefined;
  rule: string;
  /** Exit statuses that mean "nothing found" (empty output), not a failure. */
  emptyExitCodes?: readonly number[] | undefined;
  /** Any non-zero exit means "no match" (udev's PROGRAM and IMPORT{program}): recorded, not a failure. */
  exitIsMatch?: boolean;
}

/** The output of an import program, or undefined when it was not run (dry run) or failed. */
export type ImportResult = { stdout: string; raw?: Uint8Array } | undefined;

