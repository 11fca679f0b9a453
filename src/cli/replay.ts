// `hotplugd test --replay`: recorded events evaluated against two rule sets (the ones in
// use and the proposed ones), listing the events whose plan would change, and how.
import { openHistoryDb } from '../history/db.js';
import { queryEvents, type HistoryFilter } from '../history/query.js';
import { EvaluationContext, evaluateInContext } from '../engine/context.js';
import { loadRules } from '../frontends/load.js';
import { formatDiagnostic } from '../rules/model.js';
import type { RuleSet } from '../rules/ruleset.js';
import { diffPlans, planDigest, type PlanChange } from '../rules/plan-diff.js';
import { eventFromProperties, type Uevent } from '../uevent/event.js';
import { HotplugError } from '../errors.js';
import { parseTimeOption } from './args.js';
import { deviceFilter } from './history.js';
import { localTime, printable, writeLine } from './output.js';
import { DEFAULT_RULES_DIRS, DEV_ROOT, SYSFS_ROOT, defaultDbPath } from '../defaults.js';
import type { Evaluation } from '../rules/plan.js';

export interface ReplayOptions {
  db?: string | undefined;
  rulesDirs: string[];
  baseRulesDirs?: string[] | undefined;
  since?: string | undefined;
  until?: string | undefined;
  device?: string | undefined;
  limit?: number | undefined;
  sysfs?: string | undefined;
  dev?: string | undefined;
  json?: boolean | undefined;
  /** `--udev-db`: the database IMPORT{db}, IMPORT{parent} and TAGS read (resolved by the caller). */
  udevDb?: string | undefined;
}

function loadOrFail(dirs: string[], what: string): RuleSet {
  const loaded = loadRules(dirs);
  for (const d of loaded.diagnostics) console.error(formatDiagnostic(d));
  if (loaded.diagnostics.some((d) => d.severity === 'error')) throw new HotplugError('ERULES', `hotplugd test --replay: the ${what} rules have errors (above)`);
  return loaded.ruleSet;
}

const show = (value: unknown) => (typeof value === 'string' ? value : JSON.stringify(value));

/** Returns the exit status: 0 when no plan changes, 1 when some do (like diff). */
export async function replay(options: ReplayOptions): Promise<number> {
  const base = loadOrFail(options.baseRulesDirs ?? DEFAULT_RULES_DIRS, 'current');
  const proposed = loadOrFail(options.rulesDirs, 'proposed');
  const context = new EvaluationContext({ sysfsRoot: options.sysfs ?? SYSFS_ROOT, devRoot: options.dev ?? DEV_ROOT, databaseDir: options.udevDb, readOnly: true });
  // Programs are not run in a replay: their output is taken as empty, for both rule sets alike.
  const evaluate = (ruleSet: RuleSet, event: Uevent) => evaluateInContext(ruleSet, context, event, 'all', () => undefined) as Evaluation;
  const db = openHistoryDb(options.db ?? defaultDbPath(), { readonly: true });
  let replayed = 0;
  let changed = 0;
  try {
    const filter: HistoryFilter = {
      since: parseTimeOption('test', 'since', options.since),
      until: parseTimeOption('test', 'until', options.until),
      deviceIds: deviceFilter('test --replay', db, options.device),
    };
    for (const record of queryEvents(db, filter, { limit: options.limit })) {
      if (record.result?.note) continue; // never processed: nothing to compare
      replayed++;
      const event = eventFromProperties({ ...record.properties }, Date.parse(record.received_at), 'kernel');
      // Attributes come from sysfs while the device is still there; a gone device is evaluated
      // without them, the same way for both rule sets.
      const changes = diffPlans(planDigest(evaluate(base, event), record.properties), planDigest(evaluate(proposed, event), record.properties));
      if (changes.length === 0) continue;
      changed++;
      await report(record, changes, options.json ?? false);
    }
  } finally {
    db.close();
  }
  const summary = `${replayed} recorded events replayed; the plan of ${changed} would change`;
  if (options.json) await writeLine(JSON.stringify({ replayed, changed }));
  else await writeLine(summary);
  return changed > 0 ? 1 : 0;
}

async function report(record: { id: number; received_at: string; action: string; subsystem: string; devpath: string }, changes: PlanChange[], json: boolean): Promise<void> {
  if (json) {
    await writeLine(JSON.stringify({ id: record.id, received_at: record.received_at, action: record.action, subsystem: record.subsystem, devpath: record.devpath, changes }));
    return;
  }
  await writeLine(printable(`event ${record.id}  ${localTime(record.received_at)}  ${record.action} ${record.subsystem}  ${record.devpath}`));
  for (const { field, before, after } of changes) {
    await writeLine(printable(`  ${field.padEnd(10)} ${show(before)}  →  ${show(after)}`));
  }
}
