// The one rule engine: event + sysfs view → plan + trace. It decides and does nothing:
// reads go through the DeviceView, and import programs are requested from the caller
// (a generator step), so the daemon can run them and a dry run can skip them.
import type { Uevent } from '../uevent/event.js';
import type { DeviceView } from '../uevent/sysfs.js';
import type { Accounts } from '../rules/accounts.js';
import { expandTemplate, type SubstitutionName, type SubstitutionSource } from '../rules/format.js';
import type { Assignment, Condition, DeviceField, ParentCondition, Rule } from '../rules/model.js';
import { ruleOrigin, type Evaluation, type Plan, type PlannedImport, type TraceEntry } from '../rules/plan.js';
import { unquote } from '../text/names.js';
import { selectRules, type IndexedRule, type RuleSet } from '../rules/ruleset.js';
import { applyNativeAssignment } from './apply-native.js';
import { NO_SYSTEM, type DeviceDatabase, type SystemView } from '../rules/system-view.js';
import { applyUdevAssignment, udevLookup, udevTest, type UdevState } from './semantics.js';
import { runImportCondition, type ConditionOutcome } from './imports.js';

export interface EvaluationInput {
  event: Uevent;
  /** The device in sysfs; undefined (or a view of a vanished directory) on remove. */
  device: DeviceView | undefined;
  /** Where device nodes and symlinks live (`/dev`). */
  devRoot?: string;
  /** What `$sys` expands to (`/sys`). */
  sysfsMount?: string;
  /** For absolute `exists` tests; relative ones ask the device view. */
  fileExists?: (path: string) => boolean;
  /** Files, kernel parameters and `[subsystem/name]` devices, for udev rules (default: none visible). */
  system?: SystemView;
  /** What hotplugd recorded for devices at their last event (udev's database): IMPORT{db}, IMPORT{parent}, TAGS. */
  database?: DeviceDatabase;
  /** For OWNER and GROUP values that are substituted per event. */
  accounts?: Accounts;
  /** Where udev rules find programs named without a path (default /usr/lib/udev). */
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
  /** `import`: KEY=VALUE lines are merged; `program` (udev's PROGRAM): the output becomes `$result`. */
  purpose?: 'import' | 'program';
  argv: string[];
  /** The event's properties at this point of the rules: the program's environment. */
  env: Record<string, string>;
  timeoutMs: number | undefined;
  rule: string;
}

/** The output of an import program, or undefined when it was not run (dry run) or failed. */
export type ImportResult = { stdout: string; raw?: Uint8Array } | undefined;


/** Evaluates with imports answered synchronously (or skipped when no runner is given). */
export function evaluate(ruleSet: RuleSet, input: EvaluationInput, runImport?: (request: ImportRequest) => ImportResult): Evaluation {
  const steps = evaluateSteps(ruleSet, input);
  let step = steps.next();
  while (!step.done) step = steps.next(runImport?.(step.value));
  return step.value;
}

/** Evaluates with imports answered asynchronously (the daemon's path). */
export async function evaluateAsync(
  ruleSet: RuleSet,
  input: EvaluationInput,
  runImport: (request: ImportRequest) => Promise<ImportResult>,
): Promise<Evaluation> {
  const steps = evaluateSteps(ruleSet, input);
  let step = steps.next();
  while (!step.done) step = steps.next(await runImport(step.value));
  return step.value;
}

export function* evaluateSteps(ruleSet: RuleSet, input: EvaluationInput): Generator<ImportRequest, Evaluation, ImportResult> {
  const state = new EvaluationState(input);
  const trace: TraceEntry[] = [];
  const traceFailures = input.trace !== 'matched';
  const rules = traceFailures
    ? ruleSet.unindexed
    : selectRules(ruleSet.candidates(input.event.action, input.event.subsystem), (attr) => state.ancestorValues(attr));
  // After a GOTO, rules before its LABEL are passed over.
  let resumeAt = 0;
  for (const indexed of rules) {
    if (indexed.position < resumeAt) continue;
    const rule = indexed.rule;
    if (rule.appliesTo !== undefined && !state.canApply(rule.appliesTo)) continue;
    state.beginRule(rule);
    const failed = indexed.effectful ? yield* state.matchWithPrograms(indexed) : state.match(indexed);
    if (failed !== undefined) {
      if (traceFailures) trace.push({ rule: rule.name, at: rule.at, matched: false, failedKey: failed });
      continue;
    }
    trace.push({ rule: rule.name, at: rule.at, matched: true });
    for (const assignment of rule.assignments) {
      const request = state.apply(rule, assignment);
      if (request) state.imported(request, yield request);
    }
    if (indexed.gotoPosition !== undefined) resumeAt = indexed.gotoPosition;
    if (rule.stop) break;
  }
  return { plan: state.finish(), trace };
}

class EvaluationState implements SubstitutionSource, UdevState {
  readonly event: Uevent;
  readonly device: DeviceView | undefined;
  readonly devRoot: string;
  readonly input: EvaluationInput;
  readonly system: SystemView;
  #properties: Record<string, string>;
  #ownProperties = false;
  links: string[] = [];
  tags = new Set<string>();
  #final = new Set<string>();
  matchedParent: DeviceView | undefined;
  /** `$result`: the output of the last PROGRAM (udev) or import program. */
  result: string | undefined;
  #kernel: string | undefined;
  /** The dialect of the rule being evaluated, and udev's per-rule string_escape option. */
  dialect: Rule['dialect'];
  escape: 'unset' | 'none' | 'replace' = 'unset';
  readonly plan: Plan;

  constructor(input: EvaluationInput) {
    this.input = input;
    this.event = input.event;
    this.device = input.device;
    this.devRoot = input.devRoot ?? '/dev';
    this.system = input.system ?? NO_SYSTEM;
    this.#properties = input.event.properties;
    const devname = this.event.properties.DEVNAME;
    this.plan = {
      device: this.event.devpath,
      action: this.event.action,
      subsystem: this.event.subsystem,
      properties: this.#properties,
      devnode: devname ? (devname.startsWith('/') ? devname : `${this.devRoot}/${devname}`) : null,
      name: null,
      symlinks: [],
      linkPriority: 0,
      owner: null,
      group: null,
      mode: null,
      tags: [],
      attrs: [],
      sysctls: [],
      dbPersist: false,
      watch: null,
      authorize: null,
      run: [],
      modules: [],
      jobs: [],
      units: [],
      imports: [],
      warnings: [],
    };
  }

  /** The kernel name; `!` stands for `/` as in udev. */
  get kernel(): string {
    this.#kernel ??= this.event.devpath.slice(this.event.devpath.lastIndexOf('/') + 1).replaceAll('!', '/');
    return this.#kernel;
  }

  get properties(): Record<string, string> {
    return this.#properties;
  }

  /** udev's line mask: a rule whose only effects are on a device node or an interface name. */
  canApply(appliesTo: ReadonlySet<'devnode' | 'netif'>): boolean {
    if (this.event.action === 'remove') return false;
    return (appliesTo.has('devnode') && this.hasDevnode) || (appliesTo.has('netif') && this.#properties.IFINDEX !== undefined);
  }

  get hasDevnode(): boolean {
    return this.#properties.MAJOR !== undefined && this.#properties.MINOR !== undefined;
  }

  beginRule(rule: Rule): void {
    this.dialect = rule.dialect;
    // udev keeps the parent a rule matched for later rules' $id and $attr; our own rules do not.
    if (rule.dialect === 'udev') this.escape = 'unset';
    else this.matchedParent = undefined;
  }

  /** The first condition of the rule that fails, or undefined when the rule matches. */
  match({ checks }: IndexedRule): string | undefined {
    for (let i = 0; i < checks.length; i++) {
      const condition = checks[i] as Condition;
      if (!this.#test(condition)) return condition.key;
    }
    return undefined;
  }

  /** As match(), for rules with udev's PROGRAM and IMPORT: those run (through the caller) in rule order. */
  *matchWithPrograms({ checks }: IndexedRule): Generator<ImportRequest, string | undefined, ImportResult> {
    for (const condition of checks) {
      let passed: boolean;
      if (condition.kind === 'program' || condition.kind === 'import') {
        let outcome: ConditionOutcome = runImportCondition(this, condition);
        while (outcome.request !== undefined) {
          const request = { ...outcome.request, rule: condition.key };
          const result = yield request;
          this.plan.imports.push({ argv: request.argv, timeoutMs: request.timeoutMs, rule: `${condition.key} (${condition.at.file}:${condition.at.line})`, ran: result !== undefined });
          outcome = outcome.resume(result);
        }
        passed = outcome.passed;
      } else passed = this.#test(condition);
      if (!passed) return condition.key;
    }
    return undefined;
  }

  /** The values an attribute has on the device and its ancestors (trailing whitespace removed). */
  ancestorValues(attr: string): string[] {
    const values: string[] = [];
    if (this.device === undefined) return values;
    const own = this.device.attribute(attr);
    if (own !== undefined) values.push(own.trimEnd());
    for (const view of this.device.parents()) {
      const value = view.attribute(attr);
      if (value !== undefined) values.push(value.trimEnd());
    }
    return values;
  }

  field(field: DeviceField): string | undefined {
    const e = this.event;
    switch (field) {
      case 'action':
        return e.action;
      case 'subsystem':
        return e.subsystem;
      case 'devpath':
        return e.devpath;
      case 'kernel':
        return this.kernel;
      case 'devtype':
        return this.#properties.DEVTYPE;
      case 'devname':
        return this.#properties.DEVNAME;
      case 'driver':
        return this.#properties.DRIVER ?? this.device?.driver;
    }
  }

  #test(condition: Condition): boolean {
    switch (condition.kind) {
      case 'field':
        return condition.matcher.test(this.field(condition.field));
      case 'env':
        return condition.matcher.test(this.#properties[condition.name]);
      case 'attr': {
        const value = this.device?.attribute(condition.name);
        if (value === undefined && condition.absent === 'fails') return false;
        return condition.matcher.test(condition.trim ? value?.trimEnd() : value);
      }
      case 'tag':
        return condition.matcher.testAny(this.tags);
      case 'exists': {
        if (this.dialect === 'udev') return udevTest(this, condition);
        const path = expandTemplate(condition.path, this);
        const exists = path.startsWith('/') ? (this.input.fileExists?.(path) ?? false) : (this.device?.fileExists(path) ?? false);
        return exists === condition.expect;
      }
      case 'parent':
        return this.#matchParent(condition.conditions);
      case 'result':
        return condition.matcher.test(this.result);
      case 'links':
        return condition.matcher.testAny(this.links);
      case 'name':
        return condition.matcher.test(this.plan.name ?? undefined);
      case 'sysctl':
        return condition.matcher.test(this.system.sysctl(expandTemplate(condition.name, this))?.trim());
      case 'const':
        return condition.matcher.test(this.system.constant(condition.name));
      case 'program':
      case 'import':
        // Only reached through matchWithPrograms; a rule set marks such rules effectful.
        return false;
    }
  }

  // Like udev's KERNELS/SUBSYSTEMS/DRIVERS/ATTRS/TAGS: the device itself, then each ancestor.
  #matchParent(conditions: ParentCondition[]): boolean {
    const device = this.device;
    if (device !== undefined) {
      if (this.#parentMatches(device, true, conditions)) {
        this.matchedParent = device;
        return true;
      }
      for (const candidate of device.parents()) {
        if (this.#parentMatches(candidate, false, conditions)) {
          this.matchedParent = candidate;
          return true;
        }
      }
    }
    if (this.dialect === 'udev') this.matchedParent = undefined;
    return false;
  }

  #parentMatches(candidate: DeviceView, self: boolean, conditions: ParentCondition[]): boolean {
    for (let i = 0; i < conditions.length; i++) {
      const c = conditions[i] as ParentCondition;
      if (c.kind === 'tag') {
        if (!c.matcher.testAny(self ? this.tags : (this.input.database?.tags(candidate.devpath) ?? []))) return false;
        continue;
      }
      let value: string | undefined;
      if (c.kind === 'attr') {
        value = candidate.attribute(c.name);
        if (value === undefined && c.absent === 'fails') return false;
        if (c.trim) value = value?.trimEnd();
      } else if (c.field === 'kernel') value = candidate.kernel;
      else if (c.field === 'subsystem') value = self ? this.event.subsystem : candidate.subsystem;
      else if (c.field === 'driver') value = self ? this.field('driver') : candidate.driver;
      else value = self ? this.#properties.DEVTYPE : candidate.properties().DEVTYPE;
      if (!c.matcher.test(value)) return false;
    }
    return true;
  }

  lookup(name: SubstitutionName, arg: string | undefined): string {
    if (this.dialect === 'udev') return udevLookup(this, name, arg);
    const parent = this.matchedParent ?? this.device;
    switch (name) {
      case 'kernel':
        return this.kernel;
      case 'number':
        return /\d*$/.exec(this.kernel)?.[0] ?? '';
      case 'devpath':
        return this.event.devpath;
      case 'id':
        return parent?.kernel ?? '';
      case 'driver':
        return parent === this.device || parent === undefined ? (this.field('driver') ?? '') : (parent.driver ?? '');
      case 'attr':
        return this.#attribute(arg ?? '');
      case 'env':
        return this.#properties[arg ?? ''] ?? '';
      case 'major':
        return this.#properties.MAJOR ?? '';
      case 'minor':
        return this.#properties.MINOR ?? '';
      case 'result':
        return this.result ?? '';
      case 'parent':
        return this.device?.parents()[0]?.properties().DEVNAME ?? '';
      case 'name':
        return this.plan.name ?? this.#properties.DEVNAME ?? this.kernel;
      case 'links':
        return this.links.join(' ');
      case 'root':
        return this.devRoot;
      case 'sys':
        return this.input.sysfsMount ?? '/sys';
      case 'devnode':
        return this.plan.devnode ?? '';
    }
  }

  // The device's attribute; then, as in udev, the parent a `parent` condition of this rule
  // selected; with no such parent, the nearest ancestor that has the attribute.
  #attribute(name: string): string {
    const device = this.device;
    if (device === undefined) return '';
    let value = device.attribute(name);
    if (value === undefined && this.matchedParent !== undefined) value = this.matchedParent.attribute(name);
    else if (value === undefined) {
      for (const parent of device.parents()) if ((value = parent.attribute(name)) !== undefined) break;
    }
    return value?.trimEnd() ?? '';
  }

  writableProperties(): Record<string, string> {
    if (!this.#ownProperties) {
      this.#properties = Object.assign(Object.create(null) as Record<string, string>, this.#properties);
      this.#ownProperties = true;
    }
    return this.#properties;
  }

  /** True the first time; false once a `:=` of this kind made the value final. */
  claimFinal(kind: string, final: boolean | undefined): boolean {
    if (this.#final.has(kind)) return false;
    if (final) this.#final.add(kind);
    return true;
  }

  /** Applies one assignment; returns an import request when the rules need a program's output. */
  apply(rule: Rule, a: Assignment): ImportRequest | undefined {
    const origin = (): string => ruleOrigin(rule.name, a.at);
    if (rule.dialect === 'udev') {
      applyUdevAssignment(this, a, origin);
      return undefined;
    }
    return applyNativeAssignment(this, a, origin);
  }

  addModule(alias: string, rule: string): void {
    if (alias !== '' && !this.plan.modules.some((m) => m.alias === alias)) this.plan.modules.push({ alias, rule });
  }

  /** Merges an import program's KEY=VALUE lines into the event. */
  imported(request: ImportRequest, result: ImportResult): void {
    const entry: PlannedImport = { argv: request.argv, timeoutMs: request.timeoutMs, rule: request.rule, ran: result !== undefined };
    this.plan.imports.push(entry);
    if (result === undefined) return;
    this.result = result.stdout.trim();
    const properties = this.writableProperties();
    for (const line of result.stdout.split('\n')) {
      const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line.trim());
      if (match) properties[match[1] as string] = unquote(match[2] as string);
    }
  }

  finish(): Plan {
    const plan = this.plan;
    plan.symlinks = this.links.map((link) => `${this.devRoot}/${link}`);
    plan.tags = [...this.tags];
    // As udev: a device given to a group is readable and writable by it unless a mode was set.
    if (plan.mode === null && plan.group !== null && plan.group.id > 0) plan.mode = 0o660;
    if (plan.symlinks.length > 0 || plan.tags.length > 0) {
      const properties = this.writableProperties();
      if (plan.symlinks.length > 0) properties.DEVLINKS = plan.symlinks.join(' ');
      if (plan.tags.length > 0) properties.TAGS = `:${plan.tags.join(':')}:`;
    }
    plan.properties = this.#properties;
    return plan;
  }
}
