// `hotplugd test`: a dry run of the rules for one device or one recorded event.
import { existsSync, readFileSync } from 'node:fs';
import { createProperties, eventFromProperties, type Uevent } from '../uevent/event.js';
import type { Sysfs } from '../uevent/sysfs.js';
import { resolveDeviceName } from '../uevent/device-names.js';
import { EvaluationContext, evaluateInContext } from '../engine/context.js';
import { importOutcome, runProgram } from '../actions/run.js';
import type { ActionResult } from '../actions/results.js';
import { loadRules } from '../frontends/load.js';
import { formatDiagnostic, formatLocation } from '../rules/model.js';
import { evaluationToJson, type Evaluation } from '../rules/plan.js';
import { parseCommandLine, parsePositiveInt, usageError, type Command } from './args.js';
import { replay } from './replay.js';
import { DEFAULT_RULES_DIRS, DEV_ROOT, SYSFS_ROOT, UDEV_RUNTIME_DIR, defaultCacheDir, rulesCacheDirOption } from '../defaults.js';
import { openRuleCache } from '../frontends/rules-cache.js';
import { printable } from './output.js';

const usage = `Usage: hotplugd test [options] (DEVPATH | --event FILE)
       hotplugd test --replay --rules-dir DIR... [replay options]

Dry run: evaluate the rules for one device and print every rule looked at
(matched, or the first key that failed), then the plan: properties, device
node, symlinks, owner/group/mode, tags, attributes to write and programs to
run. As 'udevadm test' does, programs whose output a rule reads (PROGRAM,
IMPORT{program}, run: import) are run, with their time limits, and the
machine is visible (sysfs, TEST, SYSCTL, CONST, the kernel command line);
nothing is changed: no RUN program, node, link, attribute write, rename,
MAC address or alternative name.

  DEVPATH            the device, as /devices/... or a path under the sysfs root
                     (e.g. /sys/class/net/eth0)
  --event FILE       a recorded event instead: a JSON history record
                     ('hotplugd history --json'), a JSON object of properties, or
                     KEY=VALUE lines; '-' reads standard input

Options:
  --action ACTION    the action to simulate (default: the event's, or add)
  --rules-dir DIR    a rules directory (repeatable; default:
                     ${DEFAULT_RULES_DIRS.join(', ')})
  --sysfs ROOT       sysfs root (default: /sys)
  --dev ROOT         where device nodes and links live (default: /dev)
  --no-programs      run no program at all: their output is taken as empty
  --udev-db DIR      udev's runtime directory whose database IMPORT{db},
                     IMPORT{parent} and TAGS read, as the daemon's (default:
                     ${UDEV_RUNTIME_DIR} when it has a database; 'none' for none)
  --rules-cache DIR  parsed YAML rule files kept between runs, as the daemon's
                     (default: ${defaultCacheDir()}; 'none' for none)
  --json             print one JSON object (its shape is documented in the README)
  -h, --help         show this help

Replay: recorded events from the history evaluated against the rules in use
(--base-rules-dir, default the directories above) and the proposed ones
(--rules-dir, required); lists each event whose plan would change (rules
matched, properties, node, links, owner/group/mode, tags, attributes,
programs, modules, jobs, units) as before → after. Nothing is executed.
Exit status 0 when no plan changes, 1 when some do.
  --replay               replay recorded events
  --base-rules-dir DIR   the rules in use (repeatable)
  --since TIME           only events since TIME (1h, 2d, yesterday, ISO 8601)
  --until TIME           only events before TIME
  --device X             only events of this device (as in 'hotplugd history')
  --limit N              only the newest N events
  --db PATH              history database`;

/** The properties of a recorded event: a history record, a properties object, or KEY=VALUE lines. */
export function parseRecordedEvent(text: string): Record<string, string> {
  const properties = createProperties();
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    const record = JSON.parse(trimmed) as Record<string, unknown>;
    const source = typeof record.properties === 'object' && record.properties !== null ? (record.properties as Record<string, unknown>) : record;
    for (const [key, value] of Object.entries(source)) if (typeof value === 'string') properties[key] = value;
    return properties;
  }
  for (const line of trimmed.split('\n')) {
    const match = /^(?:E: )?([^=\s]+)=(.*)$/.exec(line.trim());
    if (match) properties[match[1] as string] = match[2] as string;
  }
  return properties;
}

function eventFromFile(file: string, action: string | undefined): Uevent {
  const text = readFileSync(file === '-' ? 0 : file, 'utf8');
  let properties: Record<string, string>;
  try {
    properties = parseRecordedEvent(text);
  } catch (error) {
    throw usageError('test', `${file}: not a recorded event (${(error as Error).message})`);
  }
  if (action) properties.ACTION = action;
  properties.ACTION ??= 'add';
  const missing = ['DEVPATH', 'SUBSYSTEM'].filter((key) => !properties[key]);
  if (missing.length > 0) throw usageError('test', `${file}: the event has no ${missing.join(' or ')}`);
  return eventFromProperties(properties, Date.now(), 'kernel');
}

/** `--udev-db DIR`: udev's runtime directory when it holds a database, unless 'none'. */
export function udevDatabaseOption(value: string | undefined): string | undefined {
  if (value === 'none') return undefined;
  if (value !== undefined) return value;
  return existsSync(`${UDEV_RUNTIME_DIR}/data`) ? UDEV_RUNTIME_DIR : undefined;
}

/** A device's devpath from what the user typed (uevent/device-names.ts); it must be present. */
function presentDevpath(sysfs: Sysfs, devRoot: string, arg: string): string {
  const devpath = resolveDeviceName(arg, { sysfsRoot: sysfs.root, devRoot });
  if (devpath === undefined || !sysfs.exists(devpath)) throw usageError('test', `no device ${JSON.stringify(arg)} under ${sysfs.root}`);
  return devpath;
}

function programJson(r: ActionResult) {
  return { argv: r.argv, ok: r.ok, exit_code: r.exitCode ?? null, signal: r.signal ?? null, timed_out: r.timedOut ?? false, error: r.error, duration_ms: r.durationMs };
}

function programStatus(r: ActionResult | undefined, noPrograms: boolean): string {
  if (r === undefined) return noPrograms ? 'not run: --no-programs' : 'not run';
  if (r.ok) return `ran, exit 0, ${Math.round(r.durationMs)} ms`;
  return `ran, failed: ${r.error ?? 'unknown error'}`;
}

function printHuman(result: Evaluation, programs: ActionResult[], noPrograms: boolean): void {
  const { plan, trace } = result;
  const out: string[] = [];
  out.push(`device     ${plan.device}`, `subsystem  ${plan.subsystem}`, `action     ${plan.action}`, '');
  const matched = trace.filter((t) => t.matched).length;
  out.push(`rules: ${trace.length} looked at, ${matched} matched`);
  for (const t of trace) {
    out.push(`  ${t.matched ? 'match' : 'no   '}  ${t.rule}  ${formatLocation(t.at)}${t.matched ? '' : `  (failed: ${t.failedKey})`}`);
  }
  out.push('', 'plan:');
  const owner = (a: { name: string; id: number } | null) => (a ? `${a.name} (${a.id})` : '-');
  out.push(`  devnode   ${plan.devnode ?? '-'}`);
  if (plan.name) out.push(`  name      ${plan.name}`);
  if (plan.interface?.mac) out.push(`  mac       ${plan.interface.mac}  (not set in a dry run)  ← ${plan.interface.rule}`);
  if (plan.interface?.altnames.length) out.push(`  altnames  ${plan.interface.altnames.join(' ')}  (not set in a dry run)  ← ${plan.interface.rule}`);
  out.push(`  symlinks  ${plan.symlinks.length > 0 ? plan.symlinks.join(' ') : '-'}${plan.linkPriority ? `  (priority ${plan.linkPriority})` : ''}`);
  out.push(`  owner     ${owner(plan.owner)}`, `  group     ${owner(plan.group)}`, `  mode      ${plan.mode === null ? '-' : plan.mode.toString(8).padStart(4, '0')}`);
  out.push(`  tags      ${plan.tags.length > 0 ? plan.tags.join(' ') : '-'}`);
  for (const a of plan.attrs) out.push(`  attr      ${a.name} = ${JSON.stringify(a.value)}  ← ${a.rule}`);
  plan.imports.forEach((r, i) => out.push(`  import    ${JSON.stringify(r.argv)}  (${programStatus(programs[i], noPrograms)})  ← ${r.rule}`));
  for (const r of plan.run) out.push(`  run       ${JSON.stringify(r.argv)}${r.timeoutMs ? `  timeout ${r.timeoutMs} ms` : ''}  (not run in a dry run)  ← ${r.rule}`);
  out.push('', 'properties:');
  for (const [key, value] of Object.entries(plan.properties)) out.push(`  ${key}=${value}`);
  if (plan.warnings.length > 0) out.push('', 'warnings:', ...plan.warnings.map((w) => `  ${w}`));
  // Every line may carry device strings (serials, names): control characters are escaped,
  // so a value can neither drive the terminal nor forge a line of its own.
  console.log(out.map(printable).join('\n'));
}

export const testCommand: Command = {
  name: 'test',
  usage,
  async run(argv) {
    const parsed = parseCommandLine('test', usage, argv, {
      event: { type: 'string' },
      action: { type: 'string' },
      'rules-dir': { type: 'string', multiple: true },
      sysfs: { type: 'string' },
      dev: { type: 'string' },
      json: { type: 'boolean' },
      'no-programs': { type: 'boolean' },
      'udev-db': { type: 'string' },
      'rules-cache': { type: 'string' },
      replay: { type: 'boolean' },
      'base-rules-dir': { type: 'string', multiple: true },
      since: { type: 'string' },
      until: { type: 'string' },
      device: { type: 'string' },
      limit: { type: 'string' },
      db: { type: 'string' },
    });
    if (parsed === null) return 0;
    const { values, positionals } = parsed;
    if (values.replay) {
      if (positionals.length > 0 || values.event !== undefined) throw usageError('test', '--replay takes no DEVPATH or --event');
      if (!values['rules-dir']) throw usageError('test', '--replay needs the proposed rules: --rules-dir DIR');
      return replay({
        db: values.db, rulesDirs: values['rules-dir'], baseRulesDirs: values['base-rules-dir'], since: values.since, until: values.until,
        device: values.device, limit: parsePositiveInt('test', 'limit', values.limit), sysfs: values.sysfs, dev: values.dev, json: values.json,
        udevDb: values['udev-db'],
      });
    }
    const replayOnly = (['base-rules-dir', 'since', 'until', 'device', 'limit', 'db'] as const).find((o) => values[o] !== undefined);
    if (replayOnly) throw usageError('test', `--${replayOnly} goes with --replay`);
    if (positionals.length > 1) throw usageError('test', `expected one DEVPATH, got ${positionals.length}`);
    if ((positionals.length === 1) === (values.event !== undefined)) throw usageError('test', 'give either a DEVPATH or --event FILE');
    const context = new EvaluationContext({
      sysfsRoot: values.sysfs ?? SYSFS_ROOT,
      devRoot: values.dev ?? DEV_ROOT,
      databaseDir: udevDatabaseOption(values['udev-db']),
      readOnly: true,
    });
    let event: Uevent;
    if (values.event !== undefined) event = eventFromFile(values.event, values.action);
    else {
      const devpath = presentDevpath(context.sysfs, context.devRoot, positionals[0] as string);
      const synthesized = context.sysfs.synthesizeEvent(devpath, values.action ?? 'add', 'kernel');
      if (!synthesized) throw usageError('test', `${devpath} is not a device (no uevent file or subsystem link)`);
      event = synthesized;
    }
    const cacheDir = rulesCacheDirOption(values['rules-cache']);
    const loaded = loadRules(values['rules-dir'] ?? DEFAULT_RULES_DIRS, cacheDir === undefined ? {} : { cache: openRuleCache(cacheDir) });
    for (const d of loaded.diagnostics) console.error(formatDiagnostic(d));
    const programs: ActionResult[] = [];
    const result = await evaluateInContext(loaded.ruleSet, context, event, 'all', async (request) => {
      if (values['no-programs']) return undefined;
      // As the daemon runs them: argv, the properties as environment, the rule's time limit.
      const { ran, output } = importOutcome(await runProgram(request.argv, { env: request.env, timeoutMs: request.timeoutMs, rule: request.rule }), request.emptyExitCodes, request.exitIsMatch);
      programs.push(ran);
      return output;
    });
    if (values.json) console.log(JSON.stringify({ ...evaluationToJson(result), programs: programs.map(programJson) }, null, 2));
    else printHuman(result, programs, values['no-programs'] ?? false);
    return 0;
  },
};
