// The one compiled form of rules. Every front end (YAML, classic udev rules, mdev.conf)
// compiles to these types, and one engine evaluates them. Where the rule languages mean
// different things, the front end says which meaning at load time, in these fields (how a
// value is escaped, how a template looks up attributes): the engine never asks which
// language a rule was written in.
import type { Account } from '../os/accounts.js';
import type { Builtin } from './builtin.js';
import type { DevnameView, Template } from './format.js';
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
  /** `devname: 'devnode'`: DEVNAME is tested as the node's path (udev), not the kernel's name. */
  | { kind: 'env'; key: string; at: SourceLocation; name: string; matcher: ValueMatcher; devname?: DevnameView }
  /** `absent: 'fails'` and `trim` are udev's: a missing attribute never matches; trailing whitespace of the value is ignored. */
  | { kind: 'attr'; key: string; at: SourceLocation; name: string; matcher: ValueMatcher; absent?: 'fails'; trim?: boolean }
  | { kind: 'tag'; key: string; at: SourceLocation; matcher: ValueMatcher }
  /**
   * A file exists: an absolute path, `[subsystem/sysname]/path`, or a path relative to the
   * device's sysfs directory; a `*` directory component matches any entry. `mode` (udev's
   * TEST{0644}): the file must have one of these permission bits.
   */
  | { kind: 'exists'; key: string; at: SourceLocation; path: Template; expect: boolean; mode?: number }
  | { kind: 'parent'; key: string; at: SourceLocation; conditions: ParentCondition[] }
  /** udev's PROGRAM and IMPORT{...}: runs while rules are matched; the test is whether it ran (and gave something). */
  | { kind: 'import'; key: string; at: SourceLocation; import: ImportSpec; expect: boolean }
  | { kind: 'result'; key: string; at: SourceLocation; matcher: ValueMatcher }
  /** The device's symlinks so far (relative to the dev root), as udev's SYMLINK==. */
  | { kind: 'links'; key: string; at: SourceLocation; matcher: ValueMatcher }
  /** The network interface name a rule assigned so far (udev's NAME==). */
  | { kind: 'name'; key: string; at: SourceLocation; matcher: ValueMatcher }
  | { kind: 'sysctl'; key: string; at: SourceLocation; name: Template; matcher: ValueMatcher }
  | { kind: 'const'; key: string; at: SourceLocation; name: 'arch' | 'virt' | 'cvm'; matcher: ValueMatcher };

/**
 * A program's argv: argument templates (each substituted), or one command line that is
 * substituted and then split into words as udev does, its program looked up in the
 * evaluation's program directory when it has no `/`.
 */
export type CommandSpec = { argv: Template[] } | { line: Template };

/** How a command's rule language sees DEVNAME (its templates' style says): for programs' environment. */
export function commandDevname(command: CommandSpec): DevnameView {
  return ('line' in command ? command.line : command.argv[0])?.style.devname ?? 'kernel';
}

/**
 * What a program's output becomes: `properties` (KEY=VALUE lines merged, udev's
 * IMPORT{program}), `result` (`$result`, sanitised as udev does for PROGRAM), or
 * `properties-and-result` (both; `$result` is the trimmed output: the YAML `run: import`).
 */
export type ImportOutput = 'properties' | 'result' | 'properties-and-result';

/** Something that adds to the event while rules are evaluated: one form for PROGRAM, IMPORT{...} and `run: import`. */
export type ImportSpec =
  | {
      source: 'program'; command: CommandSpec; output: ImportOutput; timeoutMs: number | undefined;
      /** udev's PROGRAM and IMPORT{program} are match keys: a non-zero exit is "no match", not a failure. */
      exitIsMatch?: true;
    }
  /** Resolved at load time; `command` gives its argv (argv[0] is its name). */
  | { source: 'builtin'; builtin: Builtin; command: Template }
  | { source: 'file' | 'db' | 'cmdline' | 'parent'; value: Template };

/**
 * How device text is made safe in names and paths: `substitutions` makes each substituted
 * value a safe file name component and checks the result as a relative path (hotplugd's
 * rules); `string-escape` applies udev's OPTIONS="string_escape" rules and udev's checks.
 */
export type NameEscape = 'substitutions' | 'string-escape';

export type ParentCondition =
  | { kind: 'field'; key: string; at: SourceLocation; field: ParentField; matcher: ValueMatcher }
  | { kind: 'attr'; key: string; at: SourceLocation; name: string; matcher: ValueMatcher; absent?: 'fails'; trim?: boolean }
  /** udev's TAGS: the tags hotplugd gave the device or an ancestor. */
  | { kind: 'tag'; key: string; at: SourceLocation; matcher: ValueMatcher };

/** A user or group resolved at load time (os/accounts.ts). */
export type { Account };

/** One assignment, applied in the order written. `final` (udev's `:=`) locks the value. */
export type Assignment =
  /** `emptyValue`: whether a value that expands to nothing unsets the property (hotplugd) or sets it empty (udev). */
  | { kind: 'env'; at: SourceLocation; op: 'set' | 'append' | 'remove'; name: string; value: Template; emptyValue: 'unsets' | 'kept' }
  /** `needsDevnode`: ignored for a device without a node (udev). */
  | { kind: 'symlink'; at: SourceLocation; op: 'add' | 'remove' | 'reset'; value: Template; escape: NameEscape; needsDevnode?: boolean; final?: boolean }
  | { kind: 'link-priority'; at: SourceLocation; priority: number }
  | { kind: 'name'; at: SourceLocation; value: Template; escape: NameEscape; final?: boolean }
  | { kind: 'owner' | 'group'; at: SourceLocation; account: Account; final?: boolean }
  /** udev's OWNER/GROUP with substitutions: resolved per event. */
  | { kind: 'owner' | 'group'; at: SourceLocation; name: Template; final?: boolean }
  | { kind: 'mode'; at: SourceLocation; mode: number; final?: boolean }
  | { kind: 'mode'; at: SourceLocation; template: Template; final?: boolean }
  | { kind: 'tag'; at: SourceLocation; op: 'add' | 'remove' | 'set'; value: Template; escape: NameEscape }
  | { kind: 'attr'; at: SourceLocation; name: Template; value: Template; escape: NameEscape }
  | { kind: 'sysctl'; at: SourceLocation; name: Template; value: Template }
  | { kind: 'seclabel'; at: SourceLocation; op: 'set' | 'add'; module: string; value: Template }
  /** udev's OPTIONS="string_escape=...": how later SYMLINK and ENV values of the rule set are escaped. */
  | { kind: 'escape'; at: SourceLocation; escape: 'none' | 'replace' }
  | { kind: 'option'; at: SourceLocation; option: 'db_persist' | 'watch' | 'nowatch' | 'static_node' | 'log_level' | 'dump'; value?: string; final?: boolean }
  /**
   * A program to run after the rules. `reset` (udev's RUN= and RUN:=) drops the programs
   * and modules planned so far; `builtin` (udev's RUN{builtin}) runs in hotplugd instead.
   */
  | { kind: 'run'; at: SourceLocation; command: CommandSpec; timeoutMs: number | undefined; reset?: boolean; builtin?: Builtin; final?: boolean }
  /** A program whose output is merged now, for the assignments and rules after it (`run: import`). */
  | { kind: 'import'; at: SourceLocation; import: ImportSpec }
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
  /**
   * The rule as written (udev's logical line, an mdev line, a YAML list item), when a front
   * end read it from a file: with its file and line, what names one rule in the history.
   */
  text?: string;
  conditions: Condition[];
  assignments: Assignment[];
  /** No later rule applies to the event once this one matched. */
  stop: boolean;
  /**
   * The parent device this rule's `parent` condition matched stays the one later rules'
   * `$id`, `$driver` and `$attr` look at, until another rule's parent condition runs (udev);
   * otherwise it is forgotten when the next rule starts.
   */
  keepsMatchedParent?: boolean;
  /** udev's LABEL and GOTO: after this rule matched, evaluation goes on at the rule labelled `goto` in the same file. */
  label?: string;
  goto?: string;
  /**
   * udev skips a rule whose only effects (SYMLINK, OWNER, GROUP, MODE, or NAME) cannot
   * apply: `devnode` rules need a device node, `netif` rules a network interface, and
   * neither applies on remove. Undefined: the rule always runs.
   */
  appliesTo?: ReadonlySet<'devnode' | 'netif'>;
  /**
   * YAML's `debounce`: the rule acts only once what matched has held this long (no newer
   * event of the same kind for the device meanwhile); see daemon/debounce.ts.
   */
  debounceMs?: number;
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
