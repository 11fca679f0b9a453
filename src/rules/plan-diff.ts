// What differs between two evaluations of one event: the basis of `hotplugd test --replay`.
// Where a rule sits (file:line) is left out, so moving a rule in its file changes nothing.
import type { Evaluation } from './plan.js';

export type PlanDigest = Record<string, unknown>;

/** The parts of an evaluation that decide what happens to the device. */
export function planDigest({ plan, trace }: Evaluation, kernelProperties: Record<string, string>): PlanDigest {
  const changed: Record<string, string> = {};
  for (const [key, value] of Object.entries(plan.properties)) if (kernelProperties[key] !== value) changed[key] = value;
  const removed = Object.keys(kernelProperties).filter((key) => !(key in plan.properties));
  return {
    rules: trace.filter((t) => t.matched).map((t) => t.rule),
    properties: changed,
    removed,
    devnode: plan.devnode,
    name: plan.name,
    // Whether a MAC is set, not which: a random one differs on every evaluation.
    sets_mac: plan.interface?.mac != null,
    altnames: plan.interface?.altnames ?? [],
    symlinks: [...plan.symlinks].sort(),
    link_priority: plan.linkPriority,
    owner: plan.owner?.name ?? null,
    group: plan.group?.name ?? null,
    mode: plan.mode === null ? null : plan.mode.toString(8).padStart(4, '0'),
    tags: [...plan.tags].sort(),
    attrs: plan.attrs.map((a) => `${a.name}=${a.value}`),
    authorize: plan.authorize?.allow ?? null,
    run: plan.run.map((r) => r.argv),
    imports: plan.imports.map((r) => r.argv),
    modules: plan.modules.map((m) => m.alias),
    jobs: plan.jobs.map((j) => j.argv),
    units: plan.units.map((u) => u.unit),
  };
}

export interface PlanChange {
  field: string;
  before: unknown;
  after: unknown;
}

/** The fields whose values differ, in the digest's order. */
export function diffPlans(before: PlanDigest, after: PlanDigest): PlanChange[] {
  const changes: PlanChange[] = [];
  for (const field of Object.keys(after)) {
    if (JSON.stringify(before[field]) !== JSON.stringify(after[field])) changes.push({ field, before: before[field], after: after[field] });
  }
  return changes;
}
