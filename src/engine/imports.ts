// udev's PROGRAM and IMPORT{...} tests. They change the event (properties, `$result`) and
// may need a program run by the caller: each returns either its outcome or a request
// and how to continue once the program's output (or failure) is known.
import type { ImportRequest, ImportResult } from './evaluate.js';
import { fnmatchRegExp } from '../text/fnmatch.js';
import type { Condition } from '../rules/model.js';
import { ALLOWED_IN_INPUT, decodeUntrusted, parseProperties, replaceChars, splitCommand } from '../text/escape.js';
import { programPath, runBuiltin, udevExpand, type UdevState } from './semantics.js';

export interface ConditionOutcome {
  passed: boolean;
  /** A program to run first; `resume` gives the outcome once its result is known. */
  request?: Omit<ImportRequest, 'rule'>;
  resume(result: ImportResult): ConditionOutcome;
}

type ImportCondition = Extract<Condition, { kind: 'program' | 'import' }>;

function done(passed: boolean): ConditionOutcome {
  return { passed, resume: () => done(passed) };
}

function ask(request: Omit<ImportRequest, 'rule'>, resume: (result: ImportResult) => ConditionOutcome): ConditionOutcome {
  return { passed: false, request, resume };
}

function merge(state: UdevState, pairs: Iterable<[string, string]>): boolean {
  const properties = state.writableProperties();
  let any = false;
  for (const [key, value] of pairs) {
    properties[key] = value;
    any = true;
  }
  return any;
}

function programRequest(state: UdevState, argv: string[], purpose: 'import' | 'program'): Omit<ImportRequest, 'rule'> {
  return { purpose, argv: [programPath(argv[0] as string, state.input.programDir), ...argv.slice(1)], env: state.properties, timeoutMs: undefined };
}

function output(result: NonNullable<ImportResult>): string {
  return result.raw ? decodeUntrusted(result.raw) : result.stdout;
}

export function runImportCondition(state: UdevState, condition: ImportCondition): ConditionOutcome {
  const expect = condition.expect;
  if (condition.kind === 'program') {
    state.result = undefined;
    const argv = splitCommand(udevExpand(condition.command, state));
    if (argv.length === 0) return done(!expect);
    return ask(programRequest(state, argv, 'program'), (result) => {
      if (result === undefined) return done(!expect);
      state.result = replaceChars(output(result).replace(/\n+$/, ''), ALLOWED_IN_INPUT);
      return done(expect);
    });
  }
  const value = udevExpand(condition.value, state);
  switch (condition.source) {
    case 'program': {
      const argv = splitCommand(value);
      if (argv.length === 0) return done(!expect);
      return ask(programRequest(state, argv, 'import'), (result) => {
        if (result === undefined) return done(!expect);
        merge(state, parseProperties(output(result)));
        return done(expect);
      });
    }
    case 'builtin': {
      const outcome = runBuiltin(state, splitCommand(value));
      if ('properties' in outcome) {
        merge(state, Object.entries(outcome.properties));
        return done(expect);
      }
      if ('modules' in outcome) {
        for (const alias of outcome.modules) state.addModule(alias, condition.key);
        return done(expect);
      }
      if ('program' in outcome) {
        return ask(programRequest(state, outcome.program, 'import'), (result) => {
          if (result === undefined) return done(!expect);
          merge(state, parseProperties(output(result)));
          return done(expect);
        });
      }
      if (outcome.unsupported) state.plan.warnings.push(`${condition.key} (${condition.at.file}:${condition.at.line}): ${outcome.failed}`);
      return done(!expect);
    }
    case 'file': {
      const text = state.system.readFile(value);
      if (text === undefined) return done(!expect);
      merge(state, parseProperties(text));
      return done(expect);
    }
    case 'db': {
      const recorded = state.input.database?.properties(state.event.devpath)?.[value];
      if (recorded === undefined) return done(!expect);
      merge(state, [[value, recorded]]);
      return done(expect);
    }
    case 'cmdline': {
      let found: string | undefined;
      for (const word of state.system.cmdline().split(/\s+/)) {
        if (word === value) found = '1';
        else if (word.startsWith(`${value}=`)) found = word.slice(value.length + 1);
      }
      if (found === undefined) return done(!expect);
      merge(state, [[value, found]]);
      return done(expect);
    }
    case 'parent': {
      const parent = state.device?.parents()[0];
      if (parent === undefined) return done(!expect);
      const pattern = fnmatchRegExp(value);
      const known = { ...parent.properties(), ...state.input.database?.properties(parent.devpath) };
      const have = merge(state, Object.entries(known).filter(([key]) => pattern.test(key)));
      return done(have === expect);
    }
  }
}
