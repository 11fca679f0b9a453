// Handling one event: rules (with their import programs) → device steps → programs →
// history row → subscribers. It never throws: every step is isolated, and a failure is
// logged, counted and recorded. An event without programs is handled synchronously;
// one with programs returns a promise, and the scheduler holds later events of the
// same device (and its parents and children) until it settles, as udevd does.
import { existsSync } from 'node:fs';
import { budgetExhausted, type ActionExecutor } from '../actions/execute.js';
import type { ActionResult } from '../actions/results.js';
import { describeError } from '../errors.js';
import type { HistoryWriter } from '../history/writer.js';
import type { DeviceIdentities } from '../history/devices.js';
import type { Logger } from '../log.js';
import { evaluateSteps, type ImportRequest, type ImportResult } from '../engine/evaluate.js';
import { ruleOrigin, type Evaluation, type Plan } from '../rules/plan.js';
import type { AncestorCache } from '../uevent/ancestors.js';
import type { Uevent } from '../uevent/event.js';
import type { Sysfs } from '../uevent/sysfs.js';
import type { Accounts } from '../rules/accounts.js';
import type { SystemView } from '../rules/system-view.js';
import type { UdevDatabase } from '../udevdb/database.js';
import type { LiveRules } from './live-rules.js';
import type { DeviceRegistry } from './registry.js';

/** An event after its rules and actions, as subscribers receive it. */
export interface ProcessedEvent {
  /** Its history row id (0 when it could not be recorded: the daemon was stopping). */
  id: number;
  event: Uevent;
  evaluation: Evaluation | undefined;
  /** `name (file:line:column)` of each rule that matched. */
  rules: string[];
  actions: ActionResult[];
}

export type ProcessedListener = (processed: ProcessedEvent) => void;

export interface WorkerParts {
  sysfs: Sysfs;
  sysfsRoot: string;
  devRoot: string;
  dryRun: boolean;
  ancestors: AncestorCache;
  rules: LiveRules;
  executor: ActionExecutor;
  writer: HistoryWriter;
  identities: DeviceIdentities;
  registry: DeviceRegistry;
  log: Logger;
  /** The whole event (imports and programs) must end within this (udev's event timeout). */
  eventTimeoutMs: number;
  /** False once the database is closed: late results are then only logged. */
  canRecord: () => boolean;
  /** udev's database (/run/udev/data), written after each event when enabled. */
  udevDb: UdevDatabase | undefined;
  /** What udev rules may read besides the device (files, kernel parameters, other devices). */
  system: SystemView;
  accounts: Accounts;
}

type Steps = Generator<ImportRequest, Evaluation, ImportResult>;

export const DEFAULT_EVENT_TIMEOUT_MS = 180_000;

/** A logger bound to one event, made only when something is logged (pino children cost). */
export function eventLogger(log: Logger, event: Uevent): Logger {
  return log.child({ seqnum: event.seqnum, devpath: event.devpath, action: event.action });
}

export class EventWorker {
  processed = 0;
  /** Events whose rule evaluation threw (a bug: logged, and the event still recorded). */
  evaluationFailures = 0;
  actionsFailed = 0;
  /** Events that used up their time budget. */
  timedOut = 0;
  readonly listeners = new Set<ProcessedListener>();
  #p: WorkerParts;

  constructor(parts: WorkerParts) {
    this.#p = parts;
  }

  handle(event: Uevent): void | Promise<void> {
    const deadline = Date.now() + this.#p.eventTimeoutMs;
    let steps: Steps;
    let step: IteratorResult<ImportRequest, Evaluation>;
    try {
      this.#forgetCachedDevice(event);
      steps = evaluateSteps(this.#p.rules.current, {
        event,
        device: this.#p.sysfs.device(event.devpath, this.#p.ancestors),
        devRoot: this.#p.devRoot,
        system: this.#p.system,
        accounts: this.#p.accounts,
        ...(this.#p.udevDb ? { database: this.#p.udevDb } : {}),
        trace: 'matched',
      });
      step = steps.next();
    } catch (error) {
      this.#evaluationFailed(event, error);
      return this.#act(event, undefined, [], deadline);
    }
    if (step.done) return this.#act(event, step.value, [], deadline);
    return this.#finishImports(steps, step, deadline).then(
      ({ evaluation, imports }) => this.#act(event, evaluation, imports, deadline),
      (error: unknown) => {
        this.#evaluationFailed(event, error);
        return this.#act(event, undefined, [], deadline);
      },
    );
  }

  // Runs each import program the rules ask for (not in a dry run) and feeds its output back.
  async #finishImports(steps: Steps, first: IteratorResult<ImportRequest, Evaluation>, deadline: number) {
    const imports: ActionResult[] = [];
    let step = first;
    while (!step.done) {
      const request = step.value;
      let output: ImportResult;
      if (!this.#p.dryRun) {
        const timeoutMs = Math.min(request.timeoutMs ?? this.#p.executor.programTimeoutMs, deadline - Date.now());
        const result = timeoutMs > 0
          ? await this.#p.executor.pool.run(request.argv, { env: request.env, timeoutMs, rule: request.rule })
          : budgetExhausted(request.argv, request.rule);
        imports.push(result);
        if (result.ok) output = { stdout: result.stdout ?? '' };
      }
      step = steps.next(output);
    }
    return { evaluation: step.value, imports };
  }

  #evaluationFailed(event: Uevent, error: unknown): void {
    this.evaluationFailures++;
    eventLogger(this.#p.log, event).error({ err: error }, `Failed to evaluate rules: ${describeError(error)}`);
  }

  // Device steps now; programs (if any) make the event asynchronous.
  #act(event: Uevent, evaluation: Evaluation | undefined, imports: ActionResult[], deadline: number): void | Promise<void> {
    if (evaluation && this.#p.log.isLevelEnabled('debug')) this.#logEvaluation(event, evaluation);
    const actions = imports;
    const plan = evaluation?.plan;
    try {
      this.#p.registry.apply(event);
      if (plan && this.#p.dryRun) this.#logDryRun(event, plan);
      else if (plan) actions.push(...this.#p.executor.applyDevice(event, plan));
      if (!this.#p.dryRun) this.#p.udevDb?.update(event, plan);
    } catch (error) {
      eventLogger(this.#p.log, event).error({ err: error }, `Failed to handle event: ${describeError(error)}`);
    }
    if (!plan || this.#p.dryRun || !this.#p.executor.hasPrograms(event, plan)) {
      this.#complete(event, evaluation, actions);
      return;
    }
    return this.#p.executor.runPrograms(event, plan, deadline).then(
      (results) => {
        actions.push(...results);
        if (results.some((r) => r.timedOut) && Date.now() >= deadline) {
          this.timedOut++;
          eventLogger(this.#p.log, event).warn({ timeoutMs: this.#p.eventTimeoutMs }, 'The event used up its time budget; its programs were stopped');
        }
        this.#complete(event, evaluation, actions);
      },
      (error: unknown) => {
        eventLogger(this.#p.log, event).error({ err: error }, `Failed to run programs: ${describeError(error)}`);
        this.#complete(event, evaluation, actions);
      },
    );
  }

  #complete(event: Uevent, evaluation: Evaluation | undefined, actions: ActionResult[]): void {
    const rules = evaluation ? evaluation.trace.filter((t) => t.matched).map((t) => ruleOrigin(t.rule, t.at)) : [];
    let id = 0;
    if (this.#p.canRecord()) {
      try {
        id = this.#p.writer.recordEvent(event, { plan: evaluation?.plan, rules, device: this.#p.identities.of(event) });
      } catch (error) {
        eventLogger(this.#p.log, event).error({ err: error }, `Failed to record event: ${describeError(error)}`);
      }
    }
    for (const result of actions) this.#recordAction(event, id, result);
    if (evaluation && !this.#p.dryRun) this.#superviseJobs(event, id, evaluation.plan);
    this.processed++;
    const processed: ProcessedEvent = { id, event, evaluation, rules, actions };
    for (const listener of this.listeners) {
      try {
        listener(processed);
      } catch (error) {
        this.#p.log.warn({ err: error }, `Failed to notify a subscriber: ${describeError(error)}`);
      }
    }
  }

  #logDryRun(event: Uevent, plan: Plan): void {
    if (plan.run.length > 0 || plan.jobs.length > 0 || plan.units.length > 0 || plan.modules.length > 0 || plan.symlinks.length > 0 || plan.owner || plan.group || plan.mode !== null || plan.attrs.length > 0 || plan.authorize || plan.name) {
      eventLogger(this.#p.log, event).info(
        {
          devnode: plan.devnode, name: plan.name, symlinks: plan.symlinks,
          owner: plan.owner?.name, group: plan.group?.name, mode: plan.mode?.toString(8), attrs: plan.attrs, authorize: plan.authorize?.allow,
          modules: plan.modules.map((m) => m.alias), run: plan.run.map((r) => r.argv),
          jobs: plan.jobs.map((j) => j.argv), units: plan.units.map((u) => u.unit),
        },
        'Dry run: would act',
      );
    }
  }

  // Jobs and units live as long as the device: started with it, stopped on its remove.
  #superviseJobs(event: Uevent, eventId: number, plan: Plan): void {
    const { jobs, units } = this.#p.executor;
    const record = (result: ActionResult) => this.#recordAction(event, eventId, result);
    const failed = (error: unknown) => eventLogger(this.#p.log, event).error({ err: error }, `Failed to stop jobs: ${describeError(error)}`);
    if (event.action === 'remove') {
      jobs.stopDevice(event.devpath).catch(failed);
      units.stopDevice(event.devpath).then((results) => results.forEach(record), failed);
      return;
    }
    for (const job of plan.jobs) jobs.ensure(event.devpath, job, plan.properties, record);
    for (const { unit, rule } of plan.units) units.start(event.devpath, unit, rule).then(record, failed);
  }

  #recordAction(event: Uevent, eventId: number, result: ActionResult): void {
    if (!result.ok) {
      this.actionsFailed++;
      eventLogger(this.#p.log, event).warn({ kind: result.kind, target: result.target, rule: result.rule, error: result.error }, `Failed to apply ${result.kind} ${result.target}: ${result.error}`);
    } else if (this.#p.log.isLevelEnabled('debug')) {
      eventLogger(this.#p.log, event).debug({ kind: result.kind, target: result.target, rule: result.rule, durationMs: result.durationMs }, 'Action done');
    }
    if (eventId > 0 && this.#p.canRecord()) this.#p.writer.recordAction(eventId, result);
  }

  // The event's device may be an ancestor of later events: it must be read again.
  #forgetCachedDevice(event: Uevent): void {
    const gone = event.action === 'remove' || event.action === 'move';
    this.#p.ancestors.forget(event.devpath, gone);
    if (event.devpathOld !== undefined) this.#p.ancestors.forget(event.devpathOld, true);
  }

  #logEvaluation(event: Uevent, { plan, trace }: Evaluation): void {
    const matched = trace.filter((t) => t.matched).map((t) => t.rule);
    if (matched.length === 0) return;
    eventLogger(this.#p.log, event).debug({ matched, symlinks: plan.symlinks, run: plan.run.map((r) => r.argv) }, 'Rules matched');
  }
}
