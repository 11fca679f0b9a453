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
  /** `absent: 'fails'` and `trim` are udev's: a missing attribute never matches; trailing whitespace of the value is ignored. */
  | { kind: 'attr'; key: string; at: SourceLocation; name: string; matcher: ValueMatcher; absent?: 'fails'; trim?: boolean }
  | { kind: 'tag'; key: string; at: SourceLocation; matcher: ValueMatcher }
  /** `mode`: udev's TEST{0644}: the file must have one of these permission bits. */
  | { kind: 'exists'; key: string; at: SourceLocation; path: Template; expect: boolean; mode?: number }
  | { kind: 'parent'; key: string; at: SourceLocation; conditions: ParentCondition[] }
  /** udev's PROGRAM: runs while rules are matched; its output becomes `$result`, its exit status the test. */
  | { kind: 'program'; key: string; at: SourceLocation; command: Template; expect: boolean }
  /** udev's IMPORT{...}: merges properties; the test is whether it produced any (or ran). */
  | { kind: 'import'; key: string; at: SourceLocation; source: ImportSource; value: Template; expect: boolean }
  | { kind: 'result'; key: string; at: SourceLocation; matcher: ValueMatcher }
  /** The device's symlinks so far (relative to the dev root), as udev's SYMLINK==. */
  | { kind: 'links'; key: string; at: SourceLocation; matcher: ValueMatcher }
  /** The network interface name a rule assigned so far (udev's NAME==). */
  | { kind: 'name'; key: string; at: SourceLocation; matcher: ValueMatcher }
  | { kind: 'sysctl'; key: string; at: SourceLocation; name: Template; matcher: ValueMatcher }
  | { kind: 'const'; key: string; at: SourceLocation; name: 'arch' | 'virt' | 'cvm'; matcher: ValueMatcher };

export const IMPORT_SOURCES = ['program', 'builtin', 'file', 'db', 'cmdline', 'parent'] as const;
export type ImportSource = (typeof IMPORT_SOURCES)[number];

export type ParentCondition =
  | { kind: 'field'; key: string; at: SourceLocation; field: ParentField; matcher: ValueMatcher }
  | { kind: 'attr'; key: string; at: SourceLocation; name: string; matcher: ValueMatcher; absent?: 'fails'; trim?: boolean }
  /** udev's TAGS: the tags hotplugd gave the device or an ancestor. */
  | { kind: 'tag'; key: string; at: SourceLocation; matcher: ValueMatcher };

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
  /** udev's OWNER/GROUP with substitutions: resolved per event. */
  | { kind: 'owner' | 'group'; at: SourceLocation; name: Template; final?: boolean }
  | { kind: 'mode'; at: SourceLocation; mode: number; final?: boolean }
  | { kind: 'mode'; at: SourceLocation; template: Template; final?: boolean }
  | { kind: 'tag'; at: SourceLocation; op: 'add' | 'remove' | 'set'; value: Template }
  | { kind: 'attr'; at: SourceLocation; name: Template; value: Template }
  | { kind: 'sysctl'; at: SourceLocation; name: Template; value: Template }
  | { kind: 'seclabel'; at: SourceLocation; op: 'set' | 'add'; module: string; value: Template }
  /** udev's OPTIONS="string_escape=...": how later SYMLINK and ENV values of the rule set are escaped. */
  | { kind: 'escape'; at: SourceLocation; escape: 'none' | 'replace' }
  | { kind: 'option'; at: SourceLocation; option: 'db_persist' | 'watch' | 'nowatch' | 'static_node' | 'log_level' | 'dump'; value?: string; final?: boolean }
  | { kind: 'run'; at: SourceLocation; argv: Template[]; timeoutMs: number | undefined; import: boolean; final?: boolean }
  /**
   * udev's RUN: one command line, substituted and then split into words as udev does;
   * `reset` (RUN= and RUN:=) drops the programs planned so far; `builtin` runs in hotplugd.
   */
  | { kind: 'run-command'; at: SourceLocation; command: Template; builtin: boolean; reset: boolean; final?: boolean }
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
  /** The rule language it was written in, where semantics differ (udev's substitution and escaping). */
  dialect?: 'udev' | 'mdev';
  /** udev's LABEL and GOTO: after this rule matched, evaluation goes on at the rule labelled `goto` in the same file. */
  label?: string;
  goto?: string;
  /**
   * udev skips a rule whose only effects (SYMLINK, OWNER, GROUP, MODE, or NAME) cannot
   * apply: `devnode` rules need a device node, `netif` rules a network interface, and
   * neither applies on remove. Undefined: the rule always runs.
   */
  appliesTo?: ReadonlySet<'devnode' | 'netif'>;
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
  /** The problem cost one rule (udev and mdev drop the line and load the rest of the file). */
  recovered?: boolean;
}

export function formatLocation(at: SourceLocation): string {
  return `${at.file}:${at.line}:${at.column}`;
}

export function formatDiagnostic(d: Diagnostic): string {
  return `${formatLocation(d.at)}: ${d.severity}: ${d.message}${d.hint ? ` (${d.hint})` : ''}`;
}
