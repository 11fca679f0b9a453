// One evaluation's state: the event's properties as rules change them, links, tags,
// values made final, the parent a rule matched, `$result`, and the plan being built; and
// the tests of conditions against it. Pure apart from reads through the device view and
// the system view.
import { isStrictlyBelow } from '../text/names.js';
import { DEV_ROOT, UDEV_PROGRAM_DIR } from '../defaults.js';
import { createProperties, type Uevent } from '../uevent/event.js';
import type { DeviceView } from '../uevent/sysfs.js';
import { expandTemplate, type Escape, type SubstitutionName, type SubstitutionSource, type Template, type TemplateStyle } from '../rules/format.js';
import type { Assignment, Condition, DeviceField, ParentCondition, Rule } from '../rules/model.js';
import { ruleOrigin, type Plan } from '../rules/plan.js';
import type { IndexSource } from '../rules/rule-index.js';
import { NO_SYSTEM, type SystemView } from '../rules/system-view.js';
import type { EvaluationInput } from './input.js';
import { fileExists, lookupSubstitution, type EvaluationContext } from './substitute.js';

function emptyPlan(event: Uevent, devnode: string | null): Plan {
  return {
    device: event.devpath, action: event.action, subsystem: event.subsystem, properties: event.properties, devnode,
    name: null, symlinks: [], linkPriority: 0, owner: null, group: null, mode: null, tags: [], attrs: [], sysctls: [],
    dbPersist: false, watch: null, interface: null, authorize: null, run: [], modules: [], jobs: [], units: [], imports: [], deferred: [], warnings: [],
  };
}

export class EvaluationState implements SubstitutionSource, EvaluationContext {
  readonly input: EvaluationInput;
  readonly event: Uevent;
  readonly device: DeviceView | undefined;
  readonly devRoot: string;
  readonly system: SystemView;
  readonly programDir: string;
  readonly plan: Plan;
  links: string[] = [];
  tags = new Set<string>();
  /** The ancestor (or the device) a `parent` condition matched, for `$id`, `$driver` and `$attr`. */
  matchedParent: DeviceView | undefined;
  /** `$result`: the output of the last PROGRAM or import program. */
  result: string | undefined;
  /** udev's OPTIONS="string_escape=...", for the rest of the rule. */
  escape: 'unset' | 'none' | 'replace' = 'unset';
  #properties: Record<string, string>;
  #ownProperties = false;
  #final = new Set<string>();
  #kernel: string | undefined;

  constructor(input: EvaluationInput) {
    this.input = input;
    this.event = input.event;
    this.device = input.device;
    this.devRoot = input.devRoot ?? DEV_ROOT;
    this.system = input.system ?? NO_SYSTEM;
    this.programDir = input.programDir ?? UDEV_PROGRAM_DIR;
    this.#properties = input.event.properties;
    // As udevd: a remove event carries what the device had (its properties, links and tags
    // from the database), so rules and listeners see ID_FS_UUID, DEVLINKS... one last time.
    const database = input.database;
    if (this.event.action === 'remove' && database !== undefined) {
      const stored = database.properties(this.event.devpath, this.event);
      if (stored !== undefined) {
        this.#properties = Object.assign(createProperties(), input.event.properties, stored);
        this.#ownProperties = true;
      }
      this.links = [...(database.links?.(this.event.devpath, this.event) ?? [])];
      for (const tag of database.currentTags?.(this.event.devpath, this.event) ?? []) this.tags.add(tag);
    }
    const devname = this.event.properties.DEVNAME;
    const devnode = devname ? (devname.startsWith('/') ? devname : `${this.devRoot}/${devname}`) : null;
    this.plan = emptyPlan(this.event, devnode);
    // The node action refuses such a node; the plan says so, for dry runs and the history.
    if (devnode !== null && !isStrictlyBelow(this.devRoot, devnode)) {
      this.plan.warnings.push(`DEVNAME "${devname}" leads outside ${this.devRoot}: no device node will be touched`);
    }
  }

  /** The kernel name; `!` stands for `/` as in udev. */
  get kernel(): string {
    this.#kernel ??= this.event.devpath.slice(this.event.devpath.lastIndexOf('/') + 1).replaceAll('!', '/');
    return this.#kernel;
  }

  get properties(): Record<string, string> {
    return this.#properties;
  }

  /** DEVNAME as udev rules see it: the node's path (`/dev/sdb1`), when the device has a name. */
  get devnameAsNode(): string | undefined {
    return this.#properties.DEVNAME === undefined ? undefined : (this.plan.devnode ?? undefined);
  }

  get hasDevnode(): boolean {
    return this.#properties.MAJOR !== undefined && this.#properties.MINOR !== undefined;
  }

  /** udev's line mask: a rule whose only effects are on a device node or an interface name. */
  canApply(appliesTo: ReadonlySet<'devnode' | 'netif'>): boolean {
    if (this.event.action === 'remove') return false;
    return (appliesTo.has('devnode') && this.hasDevnode) || (appliesTo.has('netif') && this.#properties.IFINDEX !== undefined);
  }

  beginRule(rule: Rule): void {
    this.escape = 'unset';
    if (!rule.keepsMatchedParent) this.matchedParent = undefined;
  }

  /** `name (file:line:column)` of the rule and assignment, for plans and warnings. */
  origin(rule: Rule, a: Assignment): string {
    return ruleOrigin(rule.name, a.at);
  }

  warn(rule: Rule, a: Assignment, message: string): void {
    this.plan.warnings.push(`${this.origin(rule, a)}: ${message}`);
  }

  expand(template: Template, escape: Escape = 'none'): string {
    return expandTemplate(template, this, escape);
  }

  /** The first condition that fails, or undefined when all pass (rules without imports). */
  match(checks: readonly Condition[]): string | undefined {
    for (let i = 0; i < checks.length; i++) {
      const condition = checks[i] as Condition;
      if (!this.test(condition)) return condition.key;
    }
    return undefined;
  }

  /** What the event shows to the rule index (rules/rule-index.ts), before any rule ran. */
  indexValues(source: IndexSource, name: string): readonly string[] {
    if (source === 'ancestor-attr') return this.ancestorValues(name);
    const value = source === 'property' ? this.#properties[name] : this.kernel[0];
    return value === undefined ? [] : [value];
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

  test(condition: Condition): boolean {
    switch (condition.kind) {
      case 'field':
        return condition.matcher.test(this.field(condition.field));
      case 'env':
        return condition.matcher.test(condition.devname === 'devnode' && condition.name === 'DEVNAME' ? this.devnameAsNode : this.#properties[condition.name]);
      case 'attr': {
        const value = this.device?.attribute(condition.name);
        if (value === undefined && condition.absent === 'fails') return false;
        return condition.matcher.test(condition.trim ? value?.trimEnd() : value);
      }
      case 'tag':
        return condition.matcher.testAny(this.tags);
      case 'exists':
        return fileExists(this, this.expand(condition.path), condition.mode) === condition.expect;
      case 'parent':
        return this.#matchParent(condition.conditions);
      case 'result':
        return condition.matcher.test(this.result);
      case 'links':
        return condition.matcher.testAny(this.links);
      case 'name':
        return condition.matcher.test(this.plan.name ?? undefined);
      case 'sysctl':
        return condition.matcher.test(this.system.sysctl(this.expand(condition.name))?.trim());
      case 'const':
        return condition.matcher.test(this.system.constant(condition.name));
      case 'import':
        // Run by the engine loop; a rule set marks rules with imports effectful.
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
    this.matchedParent = undefined;
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

  lookup(name: SubstitutionName, arg: string | undefined, style: TemplateStyle): string {
    return lookupSubstitution(this, name, arg, style);
  }

  writableProperties(): Record<string, string> {
    if (!this.#ownProperties) {
      this.#properties = Object.assign(Object.create(null) as Record<string, string>, this.#properties);
      this.#ownProperties = true;
    }
    return this.#properties;
  }

  /** Merges properties; true when there was any. */
  merge(pairs: Iterable<readonly [string, string]>): boolean {
    let any = false;
    for (const [key, value] of pairs) {
      this.writableProperties()[key] = value;
      any = true;
    }
    return any;
  }

  /** True the first time; false once a `:=` of this kind made the value final. */
  claimFinal(kind: string, final: boolean | undefined): boolean {
    if (this.#final.has(kind)) return false;
    if (final) this.#final.add(kind);
    return true;
  }

  addModule(alias: string, rule: string): void {
    if (alias !== '' && !this.plan.modules.some((m) => m.alias === alias)) this.plan.modules.push({ alias, rule });
  }

  finish(): Plan {
    const plan = this.plan;
    plan.symlinks = this.links.map((link) => `${this.devRoot}/${link}`);
    plan.tags = [...this.tags];
    // As udev: a device given to a group is readable and writable by it unless a mode was set.
    if (plan.mode === null && plan.group !== null && plan.group.id > 0) plan.mode = 0o660;
    // As udev (since v247): TAGS has every tag the device was given since it appeared (they
    // stick), CURRENT_TAGS the tags of this event.
    const sticky = [...new Set([...(this.input.database?.tags(this.event.devpath, this.event) ?? []), ...plan.tags])];
    if (plan.symlinks.length > 0 || sticky.length > 0) {
      const properties = this.writableProperties();
      if (plan.symlinks.length > 0) properties.DEVLINKS = plan.symlinks.join(' ');
      if (sticky.length > 0) properties.TAGS = `:${sticky.join(':')}:`;
      if (plan.tags.length > 0) properties.CURRENT_TAGS = `:${plan.tags.join(':')}:`;
    }
    plan.properties = this.#properties;
    return plan;
  }
}
