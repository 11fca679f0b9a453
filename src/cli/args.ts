// Shared argument handling: parseArgs with errors a person can act on, and help text.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { HotplugError } from '../errors.js';
import { MAX_TIMEOUT_MS, parseDurationMs, parseSizeBytes, parseTimeArg } from '../text/units.js';

export type Options = NonNullable<ParseArgsConfig['options']>;

type OptionValue<T> = T extends { type: 'boolean'; multiple: true } ? boolean[] : T extends { type: 'boolean' } ? boolean
  : T extends { multiple: true } ? string[] : string;

/** What parseCommandArgs returns: each option's value (absent when not given), and the positionals. */
export interface ParsedArgs<O extends Options> {
  values: { [K in keyof O]?: OptionValue<O[K]> } & { help?: boolean };
  positionals: string[];
}

export interface Command {
  name: string;
  usage: string;
  run(argv: string[]): Promise<number>;
}

/**
 * Parses a subcommand's options. Prints the usage and returns null for --help; unknown
 * options and stray arguments are usage errors that name the command.
 */
export function parseCommandArgs<O extends Options>(command: string, usage: string, argv: string[], options: O): ParsedArgs<O>['values'] | null {
  const parsed = parseCommandLine(command, usage, argv, options);
  if (parsed && parsed.positionals.length > 0) {
    throw new HotplugError('EUSAGE', `hotplugd ${command}: unexpected argument ${JSON.stringify(parsed.positionals[0])}\nTry 'hotplugd ${command} --help'.`);
  }
  return parsed?.values ?? null;
}

/** Like parseCommandArgs, for commands that take positional arguments. */
export function parseCommandLine<O extends Options>(command: string, usage: string, argv: string[], options: O): ParsedArgs<O> | null {
  let parsed: ParsedArgs<O>;
  try {
    parsed = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: true }) as ParsedArgs<O>;
  } catch (error) {
    throw new HotplugError('EUSAGE', `hotplugd ${command}: ${(error as Error).message}\nTry 'hotplugd ${command} --help'.`);
  }
  if (parsed.values.help) {
    console.log(usage);
    return null;
  }
  return parsed;
}

/** A usage error that names the command. */
export function usageError(command: string, message: string): HotplugError {
  return new HotplugError('EUSAGE', `hotplugd ${command}: ${message}\nTry 'hotplugd ${command} --help'.`);
}

/** A positive integer option, or a usage error that says what it got. */
export function parsePositiveInt(command: string, name: string, value: string | undefined, fallback?: number): number | undefined {
  if (value === undefined) return fallback;
  if (!/^[0-9]+$/.test(value) || Number(value) <= 0) {
    throw new HotplugError('EUSAGE', `hotplugd ${command}: --${name} expects a positive integer, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

/** Durations such as 500ms, 30s, 2m (a bare number is seconds). */
export function parseDuration(command: string, name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseDurationMs(value, MAX_TIMEOUT_MS);
  if (ms === undefined) {
    throw new HotplugError('EUSAGE', `hotplugd ${command}: --${name} expects a duration such as 500ms, 30s or 2m, got ${JSON.stringify(value)}`);
  }
  return ms;
}

/** A point in time: 1h or 2d ago, today, yesterday, or ISO 8601. */
export function parseTimeOption(command: string, name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const time = parseTimeArg(value);
  if (time === undefined) throw usageError(command, `--${name}: expected 1h, 2d, today, yesterday or an ISO 8601 time; got ${JSON.stringify(value)}`);
  return time;
}

/** Byte sizes such as 65536, 512K, 16M. */
export function parseByteSize(command: string, name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const bytes = parseSizeBytes(value);
  if (bytes === undefined || bytes > 2 ** 31 - 1) {
    throw new HotplugError('EUSAGE', `hotplugd ${command}: --${name} expects a size such as 65536, 512K or 16M (below 2G), got ${JSON.stringify(value)}`);
  }
  return bytes;
}
