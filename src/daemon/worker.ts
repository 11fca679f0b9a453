// Handling one event: rules → plan → actions → history row → subscribers. It never
// throws: every step is isolated, and a failure is logged, counted and recorded.
// An event whose rules import a program's output is finished when that program is.
import { existsSync } from 'node:fs';
import type { ActionExecutor } from '../actions/execute.js';
import type { ActionResult } from '../actions/results.js';
import { describeError } from '../errors.js';
import type { HistoryWriter } from '../history/store.js';
import type { Logger } from '../log.js';
import { evaluateSteps, type ImportRequest, type ImportResult } from '../rules/evaluate.js';
import type { Evaluation, Plan } from '../rules/plan.js';
import type { AncestorCache } from '../uevent/ancestors.js';
import type { Uevent } from '../uevent/event.js';
import type { Sysfs } from '../uevent/sysfs.js';
import type { LiveRules } from './live-rules.js';
import type { DeviceRegistry } from './registry.js';

export type ProcessedListener = (event: Uevent, evaluation: Evaluation | undefined) => void;

export interface WorkerParts {
  sysfs: Sysfs;
  sysfsRoot: string;
  devRoot: string;
  dryRun: boolean;
  ancestors: AncestorCache;
  rules: LiveRules;
  executor: ActionExecutor;
  writer: HistoryWriter;
  registry: DeviceRegistry;
  log: Logger;
  /** False once the database is closed: late results are then only logged. */
  canRecord: () => boolean;
}

type Steps = Generator<ImportRequest, Evaluation, ImportResult>;

export class EventWorker {
  processed = 0;
  /** Events whose rule evaluation threw (a bug: logged, and the event still recorded). */
  evaluationFailures = 0;
  actionsFailed = 0;
  /** Events waiting for an import program before their rules can finish. */
  importing = 0;
  readonly listeners = new Set<ProcessedListener>();
  #p: WorkerParts;

  /** Resolves true when no event waits for an import program, false after `timeoutMs`. */
  async idle(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.importing > 0) {
      if (Date.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return true;
  }

  constructor(parts: WorkerParts) {
    this.#p = parts;
  }

  handle(event: Uevent): void {
    let steps: Steps;
    let step: IteratorResult<ImportRequest, Evaluation>;
    try {
      this.#forgetCachedDevice(event);
      steps = evaluateSteps(this.#p.rules.current, {
        event,
        device: this.#p.sysfs.device(event.devpath, this.#p.ancestors),
        devRoot: this.#p.devRoot,
        sysfsMount: this.#p.sysfsRoot,
        fileExists: existsSync,
        trace: 'matched',
      });
      step = steps.next();
    } catch (error) {
      this.#evaluationFailed(event, error);
      this.#finish(event, undefined, []);
      return;
    }
    if (step.done) {
      this.#finish(event, step.value, []);
      return;
    }
    this.importing++;
    this.#finishImports(event, steps, step)
      .then(
        ({ evaluation, imports }) => this.#finish(event, evaluation, imports),
        (error: unknown) => {
          this.#evaluationFailed(event, error);
          this.#finish(event, undefined, []);
        },
      )
      .finally(() => this.importing--);
  }

  // Runs each import program the rules ask for (not in a dry run) and feeds its output back.
  async #finishImports(event: Uevent, steps: Steps, first: IteratorResult<ImportRequest, Evaluation>) {
    const imports: ActionResult[] = [];
    let step = first;
    while (!step.done) {
      const request = step.value;
      let output: ImportResult;
      if (!this.#p.dryRun) {
        const result = await this.#p.executor.pool.run(request.argv, { env: request.env, timeoutMs: request.timeoutMs ?? this.#p.executor.programTimeoutMs, rule: request.rule });
        imports.push(result);
        if (result.ok) output = { stdout: result.stdout ?? '' };
      }
      step = steps.next(output);
    }
    return { evaluation: step.value, imports };
  }

  #evaluationFailed(event: Uevent, error: unknown): void {
    this.evaluationFailures++;
    this.#p.log.error(
      { seqnum: event.seqnum, devpath: event.devpath, action: event.action, err: error },
      `Failed to evaluate rules: ${describeError(error)}`,
    );
  }

  #finish(event: Uevent, evaluation: Evaluation | undefined, imports: ActionResult[]): void {
    if (evaluation && this.#p.log.isLevelEnabled('debug')) this.#logEvaluation(event, evaluation);
    try {
      this.#p.registry.apply(event);
      const eventId = this.#p.writer.recordEvent(event);
      for (const result of imports) this.#recordAction(event, eventId, result);
      if (evaluation) this.#act(event, eventId, evaluation.plan);
    } catch (error) {
      this.#p.log.error(
        { seqnum: event.seqnum, devpath: event.devpath, action: event.action, err: error },
        `Failed to handle event: ${describeError(error)}`,
      );
    }
    this.processed++;
    for (const listener of this.listeners) {
      try {
        listener(event, evaluation);
      } catch (error) {
        this.#p.log.warn({ err: error }, `Failed to notify a subscriber: ${describeError(error)}`);
      }
    }
  }

  #act(event: Uevent, eventId: number, plan: Plan): void {
    if (this.#p.dryRun) {
      if (plan.run.length > 0 || plan.jobs.length > 0 || plan.units.length > 0 || plan.modules.length > 0 || plan.symlinks.length > 0 || plan.owner || plan.group || plan.mode !== null || plan.attrs.length > 0 || plan.authorize || plan.name) {
        this.#p.log.info(
          {
            seqnum: event.seqnum, devpath: event.devpath, action: event.action, devnode: plan.devnode, name: plan.name, symlinks: plan.symlinks,
            owner: plan.owner?.name, group: plan.group?.name, mode: plan.mode?.toString(8), attrs: plan.attrs, authorize: plan.authorize?.allow,
            modules: plan.modules.map((m) => m.alias), run: plan.run.map((r) => r.argv),
            jobs: plan.jobs.map((j) => j.argv), units: plan.units.map((u) => u.unit),
          },
          'Dry run: would act',
        );
      }
      return;
    }
    for (const result of this.#p.executor.applyDevice(event, plan)) this.#recordAction(event, eventId, result);
    this.#superviseJobs(event, eventId, plan);
    if (plan.run.length === 0 && plan.modules.length === 0 && plan.name === null) return;
    this.#p.executor.runPrograms(event, plan).then(
      (results) => {
        for (const result of results) this.#recordAction(event, eventId, result);
      },
      (error: unknown) => this.#p.log.error({ devpath: event.devpath, err: error }, `Failed to run programs: ${describeError(error)}`),
    );
  }

  // Jobs and units live as long as the device: started with it, stopped on its remove.
  #superviseJobs(event: Uevent, eventId: number, plan: Plan): void {
    const { jobs, units } = this.#p.executor;
    const record = (result: ActionResult) => this.#recordAction(event, eventId, result);
    const failed = (error: unknown) => this.#p.log.error({ devpath: event.devpath, err: error }, `Failed to stop jobs: ${describeError(error)}`);
    if (event.action === 'remove') {
      jobs.stopDevice(event.devpath).catch(failed);
      units.stopDevice(event.devpath).then((results) => results.forEach(record), failed);
      return;
    }
    for (const job of plan.jobs) jobs.ensure(event.devpath, job, plan.properties, record);
    for (const { unit, rule } of plan.units) units.start(event.devpath, unit, rule).then(record, failed);
  }

  #recordAction(event: Uevent, eventId: number, result: ActionResult): void {
    const fields = { seqnum: event.seqnum, devpath: event.devpath, action: event.action, kind: result.kind, target: result.target, rule: result.rule };
    if (!result.ok) {
      this.actionsFailed++;
      this.#p.log.warn({ ...fields, error: result.error }, `Failed to apply ${result.kind} ${result.target}: ${result.error}`);
    } else {
      this.#p.log.debug({ ...fields, durationMs: result.durationMs }, 'Action done');
    }
    if (this.#p.canRecord()) this.#p.writer.recordAction(eventId, result);
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
    this.#p.log.debug(
      { seqnum: event.seqnum, devpath: event.devpath, action: event.action, matched, symlinks: plan.symlinks, run: plan.run.map((r) => r.argv) },
      'Rules matched',
    );
  }
}
