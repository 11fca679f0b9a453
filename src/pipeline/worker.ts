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
import { evaluateInContext, type EvaluationContext } from '../engine/context.js';
import type { ImportRequest, ImportResult } from '../engine/evaluate.js';
import type { Evaluation, Plan } from '../rules/plan.js';
import type { Rule } from '../rules/model.js';
import { isLinkEvent, type Uevent } from '../uevent/event.js';
import type { PresentDevices } from './present-devices.js';
import type { RuleSet } from '../rules/ruleset.js';

/** An event after its rules and actions: what is recorded and what subscribers receive. */
export interface Outcome {
  /** Its history row id; 0 until recorded (and when it could not be: the daemon was stopping). */
  id: number;
  event: Uevent;
  evaluation: Evaluation | undefined;
  /** The rules that matched, of the rule set in use (labels are made where they are shown: ruleLabel). */
  rules: readonly Rule[];
  actions: ActionResult[];
  /** Why the rules could not be evaluated (sysfs unreadable: EMFILE, ...); recorded with the event. */
  failure?: string;
  /** Why the event was recorded without evaluating rules (a link event of an interface already gone). */
  skipped?: string;
}

export interface WorkerParts {
  /** What the rules see besides the event: sysfs, the machine, accounts, udev's database (engine/context.ts). */
  context: EvaluationContext;
  dryRun: boolean;
  rules: () => RuleSet;
  executor: ActionExecutor;
  present: PresentDevices;
  log: Logger;
  /** The whole event (imports and programs) must end within this (udev's event timeout). */
  eventTimeoutMs: number;
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
    const { context } = this.#p;
    // Nothing is done for an interface that went before its link event's turn (its
    // remove, queued after it, tells the rest).
    if (isLinkEvent(event) && !context.sysfs.exists(event.devpath)) {
      return { ...this.#outcome(event, undefined, []), skipped: 'the interface was gone before its turn' };
    }
    const deadline = Date.now() + this.#p.eventTimeoutMs;
    const imports: ActionResult[] = [];
    let evaluation: Evaluation | Promise<Evaluation>;
    try {
      context.forgetDevice(event);
      evaluation = evaluateInContext(this.#p.rules(), context, event, 'matched', (request) => this.#runImport(request, deadline, imports));
    } catch (error) {
      return this.#act(event, undefined, [], deadline, this.#evaluationFailed(event, error));
    }
    if (!(evaluation instanceof Promise)) return this.#act(event, evaluation, imports, deadline);
    return evaluation.then(
      (done) => this.#act(event, done, imports, deadline),
      (error: unknown) => this.#act(event, undefined, [], deadline, this.#evaluationFailed(event, error)),
    );
  }

  // Runs an import program the rules ask for (not in a dry run): its output goes back to the rules.
  #runImport(request: ImportRequest, deadline: number, imports: ActionResult[]): ImportResult | Promise<ImportResult> {
    if (this.#p.dryRun) return undefined;
    return this.#p.executor.runProgram(request.argv, request.env, request.timeoutMs, request.rule, deadline).then((result) => {
      const outcome = importOutcome(result, request.emptyExitCodes, request.exitIsMatch);
      imports.push(outcome.ran);
      return outcome.output;
    });
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
      if (!linkEvent) this.#p.present.apply(event);
      if (plan && this.#p.dryRun) this.#logDryRun(event, plan);
      else if (plan) actions.push(...this.#p.executor.applyDevice(event, plan));
      if (!this.#p.dryRun && !linkEvent) this.#p.context.database?.update(event, plan);
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
    const rules = evaluation ? evaluation.trace.filter((t) => t.matched).map((t) => t.source) : [];
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

  #logEvaluation(event: Uevent, { plan, trace }: Evaluation): void {
    const matched = trace.filter((t) => t.matched).map((t) => t.rule);
    if (matched.length === 0) return;
    eventLogger(this.#p.log, event).debug({ matched, symlinks: plan.symlinks, run: plan.run.map((r) => r.argv) }, 'Rules matched');
  }
}
