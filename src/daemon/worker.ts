// Handling one event: rules (with their import programs) → device steps → programs. It
// returns the outcome and calls nobody: the pipeline hands it on to be recorded and
// published. It never throws: a failure is logged and counted, and the event still has an
// outcome. An event without programs finishes synchronously; one with programs returns a
// promise, and the scheduler holds later events of the same device (and its parents and
// children) until it settles, as udevd does.
import type { ActionExecutor } from '../actions/execute.js';
import { importOutcome } from '../actions/run.js';
import type { ActionResult } from '../actions/results.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import { evaluateSteps, type EvaluationInput, type EvaluationSteps, type ImportRequest, type ImportResult } from '../engine/evaluate.js';
import { ruleOrigin, type Evaluation, type Plan } from '../rules/plan.js';
import type { AncestorCache } from '../uevent/ancestors.js';
import { isLinkEvent, type Uevent } from '../uevent/event.js';
import type { Sysfs } from '../uevent/sysfs.js';
import type { UdevDatabase } from '../udevdb/database.js';
import type { DeviceRegistry } from './registry.js';
import type { RuleSet } from '../rules/ruleset.js';

/** An event after its rules and actions: what is recorded and what subscribers receive. */
export interface Outcome {
  /** Its history row id; 0 until recorded (and when it could not be: the daemon was stopping). */
  id: number;
  event: Uevent;
  evaluation: Evaluation | undefined;
  /** `name (file:line:column)` of each rule that matched. */
  rules: string[];
  actions: ActionResult[];
  /** Why the rules could not be evaluated (sysfs unreadable: EMFILE, ...); recorded with the event. */
  failure?: string;
  /** Why the event was recorded without evaluating rules (a link event of an interface already gone). */
  skipped?: string;
}

export interface WorkerParts {
  sysfs: Sysfs;
  devRoot: string;
  dryRun: boolean;
  ancestors: AncestorCache;
  rules: () => RuleSet;
  executor: ActionExecutor;
  registry: DeviceRegistry;
  log: Logger;
  /** The whole event (imports and programs) must end within this (udev's event timeout). */
  eventTimeoutMs: number;
  /** udev's database (/run/udev/data), written after each event when enabled. */
  udevDb: UdevDatabase | undefined;
  /** What rules see besides the device (files, kernel parameters, other devices), and accounts. */
  evaluation: Pick<EvaluationInput, 'system' | 'accounts' | 'programDir'>;
}

export const DEFAULT_EVENT_TIMEOUT_MS = 180_000;

/** A logger bound to one event, made only when something is logged (pino children cost). */
export function eventLogger(log: Logger, event: Uevent): Logger {
  return log.child({ seqnum: event.seqnum, devpath: event.devpath, action: event.action });
}

export class EventWorker {
  #processed = 0;
  /** Events whose rule evaluation threw (a bug: logged, and the event still recorded). */
  #evaluationFailures = 0;
  /** Events that used up their time budget. */
  #timedOut = 0;
  #p: WorkerParts;

  constructor(parts: WorkerParts) {
    this.#p = parts;
  }

  stats() {
    return { processed: this.#processed, evaluationFailures: this.#evaluationFailures, eventsTimedOut: this.#timedOut };
  }

  handle(event: Uevent): Outcome | Promise<Outcome> {
    // Nothing is done for an interface that went before its link event's turn (its
    // remove, queued after it, tells the rest).
    if (isLinkEvent(event) && !this.#p.sysfs.exists(event.devpath)) {
      return { ...this.#outcome(event, undefined, []), skipped: 'the interface was gone before its turn' };
    }
    const deadline = Date.now() + this.#p.eventTimeoutMs;
    let steps: EvaluationSteps;
    let step: IteratorResult<ImportRequest, Evaluation>;
    try {
      this.#forgetCachedDevice(event);
      steps = evaluateSteps(this.#p.rules(), {
        event,
        device: this.#p.sysfs.device(event.devpath, this.#p.ancestors),
        devRoot: this.#p.devRoot,
        ...this.#p.evaluation,
        ...(this.#p.udevDb ? { database: this.#p.udevDb } : {}),
        trace: 'matched',
      });
      step = steps.next();
    } catch (error) {
      return this.#act(event, undefined, [], deadline, this.#evaluationFailed(event, error));
    }
    if (step.done) return this.#act(event, step.value, [], deadline);
    return this.#finishImports(steps, step, deadline).then(
      ({ evaluation, imports }) => this.#act(event, evaluation, imports, deadline),
      (error: unknown) => this.#act(event, undefined, [], deadline, this.#evaluationFailed(event, error)),
    );
  }

  // Runs each import program the rules ask for (not in a dry run) and feeds its output back.
  async #finishImports(steps: EvaluationSteps, first: IteratorResult<ImportRequest, Evaluation>, deadline: number) {
    const imports: ActionResult[] = [];
    let step = first;
    while (!step.done) {
      const request = step.value;
      let output: ImportResult;
      if (!this.#p.dryRun) {
        const outcome = importOutcome(await this.#p.executor.runProgram(request.argv, request.env, request.timeoutMs, request.rule, deadline), request.emptyExitCodes);
        imports.push(outcome.ran);
        output = outcome.output;
      }
      step = steps.next(output);
    }
    return { evaluation: step.value, imports };
  }

  #evaluationFailed(event: Uevent, error: unknown): string {
    this.#evaluationFailures++;
    const message = describeError(error);
    eventLogger(this.#p.log, event).error({ err: error }, `Failed to evaluate rules: ${message}`);
    return message;
  }

  // Device steps now; programs (if any) make the event asynchronous.
  #act(event: Uevent, evaluation: Evaluation | undefined, actions: ActionResult[], deadline: number, failure?: string): Outcome | Promise<Outcome> {
    if (evaluation && this.#p.log.isLevelEnabled('debug')) this.#logEvaluation(event, evaluation);
    const plan = evaluation?.plan;
    try {
      // Link events say nothing of the device's presence or of what udev's database holds.
      const linkEvent = isLinkEvent(event);
      if (!linkEvent) this.#p.registry.apply(event);
      if (plan && this.#p.dryRun) this.#logDryRun(event, plan);
      else if (plan) actions.push(...this.#p.executor.applyDevice(event, plan));
      if (!this.#p.dryRun && !linkEvent) this.#p.udevDb?.update(event, plan);
    } catch (error) {
      eventLogger(this.#p.log, event).error({ err: error }, `Failed to handle event: ${describeError(error)}`);
    }
    if (!plan || this.#p.dryRun || !this.#p.executor.hasPrograms(event, plan)) return this.#outcome(event, evaluation, actions, failure);
    return this.#p.executor.runPrograms(event, plan, deadline).then(
      (results) => {
        actions.push(...results);
        if (results.some((r) => r.timedOut) && Date.now() >= deadline) {
          this.#timedOut++;
          eventLogger(this.#p.log, event).warn({ timeoutMs: this.#p.eventTimeoutMs }, 'The event used up its time budget; its programs were stopped');
        }
        return this.#outcome(event, evaluation, actions);
      },
      (error: unknown) => {
        eventLogger(this.#p.log, event).error({ err: error }, `Failed to run programs: ${describeError(error)}`);
        return this.#outcome(event, evaluation, actions);
      },
    );
  }

  #outcome(event: Uevent, evaluation: Evaluation | undefined, actions: ActionResult[], failure?: string): Outcome {
    this.#processed++;
    const rules = evaluation ? evaluation.trace.filter((t) => t.matched).map((t) => ruleOrigin(t.rule, t.at)) : [];
    return { id: 0, event, evaluation, rules, actions, ...(failure === undefined ? {} : { failure }) };
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
