// The one compiled form of rules. Every front end (native YAML today; classic udev
// rules and mdev.conf later) compiles to these types, and one engine evaluates them.
import type { Template } from './format.js';
import type { ValueMatcher } from './match.js';

/** Where something was written: 1-based line and column. */
export interface SourceLocation {
  file: string;
  line: number;
  column: number;
}

/** Fields of the device itself that a rule can test. */
export const DEVICE_FIELDS = ['action', 'subsystem', 'devtype', 'kernel', 'devpath', 'devname', 'driver'] as const;
export type DeviceField = (typeof DEVICE_FIELDS)[number];

/** Fields of an ancestor that a `parent` condition can test (udev's KERNELS, SUBSYSTEMS, DRIVERS). */
export const PARENT_FIELDS = ['subsystem', 'devtype', 'kernel', 'driver'] as const;
export type ParentField = (typeof PARENT_FIELDS)[number];

/** One test of a rule. `key` names it in traces, e.g. `attrs.idVendor` or `parent.subsystem`. */
export type Condition =
  | { kind: 'field'; key: string; at: SourceLocation; field: DeviceField; matcher: ValueMatcher }
  | { kind: 'env'; key: string; at: SourceLocation; name: string; matcher: ValueMatcher }
  | { kind: 'attr'; key: string; at: SourceLocation; name: string; matcher: ValueMatcher }
  | { kind: 'tag'; key: string; at: SourceLocation; matcher: ValueMatcher }
  | { kind: 'exists'; key: string; at: SourceLocation; path: Template; expect: boolean }
  | { kind: 'parent'; key: string; at: SourceLocation; conditions: ParentCondition[] };

export type ParentCondition =
  | { kind: 'field'; key: string; at: SourceLocation; field: ParentField; matcher: ValueMatcher }
  | { kind: 'attr'; key: string; at: SourceLocation; name: string; matcher: ValueMatcher };

/** A user or group resolved at load time. */
export interface Account {
  name: string;
  id: number;
}

/** One assignment, applied in the order written. `final` (udev's `:=`) locks the value. */
export type Assignment =
  | { kind: 'env'; at: SourceLocation; op: 'set' | 'append' | 'remove'; name: string; value: Template }
  | { kind: 'symlink'; at: SourceLocation; op: 'add' | 'remove' | 'reset'; value: Template; final?: boolean }
  | { kind: 'link-priority'; at: SourceLocation; priority: number }
  | { kind: 'name'; at: SourceLocation; value: Template; final?: boolean }
  | { kind: 'owner' | 'group'; at: SourceLocation; account: Account; final?: boolean }
  | { kind: 'mode'; at: SourceLocation; mode: number; final?: boolean }
  | { kind: 'tag'; at: SourceLocation; op: 'add' | 'remove'; value: Template }
  | { kind: 'attr'; at: SourceLocation; name: Template; value: Template }
  | { kind: 'run'; at: SourceLocation; argv: Template[]; timeoutMs: number | undefined; import: boolean; final?: boolean }
  | { kind: 'module'; at: SourceLocation; alias: Template }
  | { kind: 'authorize'; at: SourceLocation; authorize: boolean }
  | { kind: 'job'; at: SourceLocation; argv: Template[]; restart: RestartPolicy; stopSignal: string }
  | { kind: 'unit'; at: SourceLocation; unit: Template };

/** When a supervised job is started again after it ends. */
export const RESTART_POLICIES = ['on-failure', 'always', 'never'] as const;
export type RestartPolicy = (typeof RESTART_POLICIES)[number];

export interface Rule {
  /** The rule's name, or `file:line` when it has none. */
  name: string;
  at: SourceLocation;
  conditions: Condition[];
  assignments: Assignment[];
  /** No later rule applies to the event once this one matched. */
  stop: boolean;
  /** Exact actions / subsystems the rule can match; undefined means any (used for indexing). */
  actions: ReadonlySet<string> | undefined;
  subsystems: ReadonlySet<string> | undefined;
}

export type Severity = 'error' | 'warning';

/** A load or lint problem, printed as `file:line:column: severity: message`. */
export interface Diagnostic {
  severity: Severity;
  at: SourceLocation;
  message: string;
  hint?: string;
}

export function formatLocation(at: SourceLocation): string {
  return `${at.file}:${at.line}:${at.column}`;
}

export function formatDiagnostic(d: Diagnostic): string {
  return `${formatLocation(d.at)}: ${d.severity}: ${d.message}${d.hint ? ` (${d.hint})` : ''}`;
}
