// What rule evaluation decides for one event: the action plan (nothing done yet) and
// the trace of every rule looked at. `hotplugd test --json` prints exactly this shape.
import type { Account, Rule, SourceLocation } from './model.js';
import { formatLocation } from './model.js';

/** A program to run after the event's rules (argv already substituted). */
export interface PlannedRun {
  argv: string[];
  timeoutMs: number | undefined;
  rule: string;
  /** DEVNAME in the program's environment is the node's path (udev's RUN), not the kernel's name. */
  devnameAsNode?: boolean;
}

/** The environment of a program: the properties, with DEVNAME as the node's path when asked. */
export function programEnvironment(properties: Record<string, string>, devnode: string | null, devnameAsNode: boolean | undefined): Record<string, string> {
  return devnameAsNode && devnode !== null ? { ...properties, DEVNAME: devnode } : properties;
}

/** A program whose KEY=VALUE output is merged into the event while rules are evaluated. */
export interface PlannedImport extends PlannedRun {
  /** False when it was not run (a dry run) or failed: later rules did not see its output. */
  ran: boolean;
}

/** A kernel module to load (`modprobe -b -q -- ALIAS`), by alias such as a MODALIAS. */
export interface PlannedModule {
  alias: string;
  rule: string;
}

/** A long-running program for as long as the device is there. */
export interface PlannedJob {
  argv: string[];
  restart: 'on-failure' | 'always' | 'never';
  stopSignal: string;
  rule: string;
}

export interface PlannedAttr {
  name: string;
  value: string;
  rule: string;
}

export interface Plan {
  device: string;
  action: string;
  subsystem: string;
  /** The event's properties after the rules (with DEVLINKS and TAGS as udev sets them). */
  properties: Record<string, string>;
  /** The device node, when the device has one: `<dev root>/<DEVNAME>`. */
  devnode: string | null;
  /** A new network interface name. */
  name: string | null;
  /** A network interface's MAC address and alternative names to set (net_setup_link's .link file). */
  interface: { mac: string | null; altnames: string[]; rule: string } | null;
  /** Absolute symlink paths under the dev root. */
  symlinks: string[];
  linkPriority: number;
  owner: Account | null;
  group: Account | null;
  mode: number | null;
  tags: string[];
  attrs: PlannedAttr[];
  /** Kernel parameters to write (udev's SYSCTL{net/ipv4/...}), names with `/`. */
  sysctls: PlannedAttr[];
  /** udev's OPTIONS: keep the database entry across a database cleanup; watch the node for writes. */
  dbPersist: boolean;
  watch: boolean | null;
  /** USB authorization: false refuses the device (writes 0 to `authorized`), true allows it. */
  authorize: { allow: boolean; rule: string } | null;
  run: PlannedRun[];
  modules: PlannedModule[];
  jobs: PlannedJob[];
  /** systemd units to start with the device (and stop when it goes). */
  units: { unit: string; rule: string }[];
  imports: PlannedImport[];
  /** Rules with `debounce` that matched: they act on a later turn, if the state holds (see daemon/debounce.ts). */
  deferred: { rule: string; debounceMs: number }[];
  /** Values a rule produced that were refused (an unsafe symlink, a bad tag) and why. */
  warnings: string[];
}

export interface TraceEntry {
  rule: string;
  at: SourceLocation;
  /** The rule itself, of the rule set that was evaluated. */
  source: Rule;
  matched: boolean;
  /** The first key that did not match. */
  failedKey?: string;
}

export interface Evaluation {
  plan: Plan;
  trace: TraceEntry[];
}

/** A rule's `file:line` as plan entries cite it. */
export function ruleOrigin(name: string, at: SourceLocation): string {
  return `${name} (${formatLocation(at)})`;
}

const labels = new WeakMap<Rule, string>();

/** A rule's `name (file:line:column)`, made once per rule: events carry rules, not their labels. */
export function ruleLabel(rule: Rule): string {
  let label = labels.get(rule);
  if (label === undefined) labels.set(rule, (label = ruleOrigin(rule.name, rule.at)));
  return label;
}

/** The stable JSON shape of `hotplugd test --json` (documented in the README). */
export function evaluationToJson({ plan, trace }: Evaluation): Record<string, unknown> {
  return {
    device: plan.device,
    action: plan.action,
    subsystem: plan.subsystem,
    properties: plan.properties,
    devnode: plan.devnode,
    name: plan.name,
    interface: plan.interface,
    symlinks: plan.symlinks,
    link_priority: plan.linkPriority,
    owner: plan.owner,
    group: plan.group,
    mode: plan.mode === null ? null : plan.mode.toString(8).padStart(4, '0'),
    tags: plan.tags,
    attrs: plan.attrs,
    sysctls: plan.sysctls,
    db_persist: plan.dbPersist,
    watch: plan.watch,
    authorize: plan.authorize,
    run: plan.run.map((r) => ({ argv: r.argv, timeout: r.timeoutMs ?? null, rule: r.rule })),
    modules: plan.modules,
    jobs: plan.jobs.map((j) => ({ argv: j.argv, restart: j.restart, stop_signal: j.stopSignal, rule: j.rule })),
    units: plan.units,
    imports: plan.imports.map((r) => ({ argv: r.argv, timeout: r.timeoutMs ?? null, rule: r.rule, ran: r.ran })),
    deferred: plan.deferred.map((d) => ({ rule: d.rule, debounce_ms: d.debounceMs })),
    warnings: plan.warnings,
    trace: trace.map((t) => ({
      rule: t.rule,
      file: t.at.file,
      line: t.at.line,
      matched: t.matched,
      failed_key: t.failedKey ?? null,
    })),
  };
}
