// The one rule engine: event + sysfs view → plan + trace, for rules of every language
// (they are compiled to one form before they get here). It decides and does nothing:
// reads go through the DeviceView and the SystemView, and programs whose output the rules
// need are requested from the caller (a generator step), so the daemon runs them, a dry
// run may run them, and a pure evaluation skips them.
import { ruleOrigin, type Evaluation, type TraceEntry } from '../rules/plan.js';
import { selectRules, type RuleSet } from '../rules/ruleset.js';
import { applyAssignment } from './assign.js';
import { runImport } from './imports.js';
import type { EvaluationInput, ImportRequest, ImportResult } from './input.js';
import { EvaluationState } from './state.js';

export type { EvaluationInput, ImportRequest, ImportResult };

export type EvaluationSteps = Generator<ImportRequest, Evaluation, ImportResult>;

/** Answers a program request: its output now, a promise of it, or undefined (not run). */
export type ImportAnswer = (request: ImportRequest) => ImportResult | Promise<ImportResult>;

/**
 * The one loop over an evaluation's steps: each program request goes to `answer`. It
 * finishes synchronously while the answers do (no programs, or a pure evaluation), and
 * returns a promise from the first answer that is one.
 */
export function driveEvaluation(steps: EvaluationSteps, answer: ImportAnswer): Evaluation | Promise<Evaluation> {
  let step = steps.next();
  while (!step.done) {
    const result = answer(step.value);
    if (result instanceof Promise) return result.then((output) => finishAsync(steps, steps.next(output), answer));
    step = steps.next(result);
  }
  return step.value;
}

async function finishAsync(steps: EvaluationSteps, first: IteratorResult<ImportRequest, Evaluation>, answer: ImportAnswer): Promise<Evaluation> {
  let step = first;
  while (!step.done) step = steps.next(await answer(step.value));
  return step.value;
}

/** Evaluates with imports answered synchronously (or skipped when no runner is given). */
export function evaluate(ruleSet: RuleSet, input: EvaluationInput, runImportProgram?: (request: ImportRequest) => ImportResult): Evaluation {
  return driveEvaluation(evaluateSteps(ruleSet, input), (request) => runImportProgram?.(request)) as Evaluation;
}
/** Evaluates with imports answered asynchronously. */
export async function evaluateAsync(ruleSet: RuleSet, input: EvaluationInput, runImportProgram: (request: ImportRequest) => Promise<ImportResult>): Promise<Evaluation> {
  return driveEvaluation(evaluateSteps(ruleSet, input), runImportProgram);
}

export function* evaluateSteps(ruleSet: RuleSet, input: EvaluationInput): EvaluationSteps {
  const state = new EvaluationState(input);
  const trace: TraceEntry[] = [];
  const traceFailures = input.trace !== 'matched';
  const rules = traceFailures
    ? ruleSet.unindexed
    : selectRules(ruleSet.candidates(input.event.action, input.event.subsystem), (source, name) => state.indexValues(source, name));
  // After a GOTO, rules before its LABEL are passed over.
  let resumeAt = 0;
  // A debounced turn: rules of that debounce act; the others only set properties again.
  const turn = input.event.debounceMs;
  for (const indexed of rules) {
    if (indexed.position < resumeAt) continue;
    const rule = indexed.rule;
    if (rule.appliesTo !== undefined && !state.canApply(rule.appliesTo)) continue;
    if (turn !== undefined && rule.debounceMs !== undefined && rule.debounceMs !== turn) continue;
    state.beginRule(rule);
    let failed: string | undefined;
    if (!indexed.effectful) failed = state.match(indexed.checks);
    else {
      // Rules with PROGRAM or IMPORT: those run (through the caller) in condition order.
      for (const condition of indexed.checks) {
        const passed = condition.kind === 'import'
          ? (yield* runImport(state, condition.import, `${condition.key} (${condition.at.file}:${condition.at.line})`)) === condition.expect
          : state.test(condition);
        if (!passed) {
          failed = condition.key;
          break;
        }
      }
    }
    if (failed !== undefined) {
      if (traceFailures) trace.push({ rule: rule.name, at: rule.at, source: rule, matched: false, failedKey: failed });
      continue;
    }
    trace.push({ rule: rule.name, at: rule.at, source: rule, matched: true });
    if (rule.debounceMs !== undefined && turn === undefined) {
      // Not yet: the rule acts on its turn, if the state holds until then.
      state.plan.deferred.push({ rule: ruleOrigin(rule.name, rule.at), debounceMs: rule.debounceMs });
      continue;
    }
    const propertiesOnly = turn !== undefined && rule.debounceMs === undefined;
    for (const assignment of rule.assignments) {
      if (propertiesOnly) {
        if (assignment.kind === 'env') applyAssignment(state, rule, assignment);
      } else if (assignment.kind === 'import') yield* runImport(state, assignment.import, state.origin(rule, assignment));
      else applyAssignment(state, rule, assignment);
    }
    if (indexed.gotoPosition !== undefined) resumeAt = indexed.gotoPosition;
    if (rule.stop) break;
  }
  return { plan: state.finish(), trace };
}
