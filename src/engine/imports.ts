// The one import: udev's PROGRAM and IMPORT{program,builtin,file,db,cmdline,parent}, and
// the YAML `run: import`. It changes the event (properties, `$result`) and may need a
// program run by the caller: a generator that yields the request and gets the output.
import { ALLOWED_IN_INPUT, decodeUntrusted, replaceChars, splitCommand } from '../text/escape.js';
import { fnmatchTester } from '../text/fnmatch.js';
import { parseProperties } from '../text/properties.js';
import type { DevnameView } from '../rules/format.js';
import { commandDevname, type CommandSpec, type ImportOutput, type ImportSpec } from '../rules/model.js';
import { programEnvironment } from '../rules/plan.js';
import type { Builtin, BuiltinOutcome } from '../rules/builtin.js';
import type { ImportRequest, ImportResult } from './input.js';
import type { EvaluationState } from './state.js';

type ImportSteps = Generator<ImportRequest, boolean, ImportResult>;

/**
 * The argv of a command: argument templates substituted one by one, or a command line
 * substituted and split into words (a program named without an absolute path is found in the program
 * directory). Undefined, with a warning, when there is nothing to run.
 */
export function commandArgv(state: EvaluationState, command: CommandSpec, warn: (message: string) => void): string[] | undefined {
  if ('argv' in command) {
    const argv = command.argv.map((t) => state.expand(t));
    if (argv[0]?.startsWith('/')) return argv;
    warn(`refused to run "${argv[0] ?? ''}": not an absolute path`);
    return undefined;
  }
  const argv = splitCommand(state.expand(command.line));
  if (argv.length === 0) return undefined;
  if (!(argv[0] as string).startsWith('/')) argv[0] = `${state.programDir}/${argv[0]}`;
  return argv;
}

/** Runs an in-process builtin; one that needs a program returns it instead. */
export function runBuiltin(state: EvaluationState, builtin: Builtin, argv: string[]): BuiltinOutcome {
  try {
    return builtin.run(argv, {
      device: state.device, devpath: state.event.devpath, subsystem: state.event.subsystem, action: state.event.action,
      properties: state.properties, devnode: state.plan.devnode,
    });
  } catch (error) {
    return { failed: `builtin ${builtin.name} failed: ${(error as Error).message}` };
  }
}

// Runs a program through the caller and takes its output as `output` says; false when it did not run or failed.
interface ProgramOptions {
  emptyExitCodes?: readonly number[] | undefined;
  keep?: ((name: string) => boolean) | undefined;
  exitIsMatch?: boolean | undefined;
}

function* program(state: EvaluationState, argv: string[], output: ImportOutput, timeoutMs: number | undefined, rule: string, devname: DevnameView, options: ProgramOptions = {}): ImportSteps {
  const { emptyExitCodes, keep, exitIsMatch } = options;
  const env = programEnvironment(state.properties, state.plan.devnode, devname === 'devnode');
  const request: ImportRequest = { argv, env, timeoutMs, rule, ...(emptyExitCodes ? { emptyExitCodes } : {}), ...(exitIsMatch ? { exitIsMatch } : {}) };
  if (output === 'result') state.result = undefined;
  const result = yield request;
  state.plan.imports.push({ argv, timeoutMs, rule, ran: result !== undefined });
  if (result === undefined) return false;
  const text = result.raw ? decodeUntrusted(result.raw) : result.stdout;
  if (output === 'result') state.result = replaceChars(text.replace(/\n+$/, ''), ALLOWED_IN_INPUT);
  else if (output === 'properties-and-result') state.result = text.trim();
  if (output !== 'result') state.merge(keep ? parseProperties(text).filter(([name]) => keep(name)) : parseProperties(text));
  return true;
}

/** Runs one import; true when it ran and (for file, db, cmdline and parent) found something. */
export function* runImport(state: EvaluationState, spec: ImportSpec, rule: string): ImportSteps {
  const warn = (message: string) => state.plan.warnings.push(`${rule}: ${message}`);
  switch (spec.source) {
    case 'program': {
      const argv = commandArgv(state, spec.command, warn);
      if (argv === undefined) return false;
      return yield* program(state, argv, spec.output, spec.timeoutMs, rule, commandDevname(spec.command), { exitIsMatch: spec.exitIsMatch });
    }
    case 'builtin': {
      const outcome = runBuiltin(state, spec.builtin, splitCommand(state.expand(spec.command)));
      if ('properties' in outcome) {
        state.merge(Object.entries(outcome.properties));
        if (outcome.interface) state.plan.interface = { ...outcome.interface, rule };
        return true;
      }
      if ('modules' in outcome) {
        for (const alias of outcome.modules) state.addModule(alias, rule);
        return true;
      }
      if ('program' in outcome) return yield* program(state, outcome.program, 'properties', undefined, rule, spec.command.style.devname, { emptyExitCodes: outcome.emptyExitCodes, keep: outcome.keep });
      if (outcome.unsupported) warn(outcome.failed);
      return false;
    }
    case 'file': {
      const text = state.system.readFile(state.expand(spec.value));
      if (text === undefined) return false;
      state.merge(parseProperties(text));
      return true;
    }
    case 'db': {
      const key = state.expand(spec.value);
      const recorded = state.input.database?.properties(state.event.devpath, state.event)?.[key];
      return recorded !== undefined && state.merge([[key, recorded]]);
    }
    case 'cmdline': {
      const key = state.expand(spec.value);
      let found: string | undefined;
      for (const word of state.system.cmdline().split(/\s+/)) {
        if (word === key) found = '1';
        else if (word.startsWith(`${key}=`)) found = word.slice(key.length + 1);
      }
      return found !== undefined && state.merge([[key, found]]);
    }
    case 'parent': {
      const parent = state.device?.parents()[0];
      if (parent === undefined) return false;
      const matches = fnmatchTester(state.expand(spec.value));
      const known = { ...parent.properties(), ...state.input.database?.properties(parent.devpath) };
      return state.merge(Object.entries(known).filter(([key]) => matches(key)));
    }
  }
}
