// What an evaluation sees besides the event, built one way for the daemon, `hotplugd test`
// and `hotplugd test --replay`: the device in sysfs (through a cache of ancestors), the
// machine (files, kernel parameters, constants, other devices, virtualization), the
// accounts OWNER and GROUP name, and what was recorded for devices at their last event
// (udev's database: IMPORT{db}, IMPORT{parent}, TAGS), so the dry run sees exactly what
// the daemon sees. This is where the engine's reads are given their sources; the engine
// itself (evaluate.ts) stays a function of its input.
import { loadAccounts, type Accounts } from '../os/accounts.js';
import { hypervisorSignature } from '../os/system-calls.js';
import type { Evaluation } from '../rules/plan.js';
import type { RuleSet } from '../rules/ruleset.js';
import { machineView, type SystemView } from '../rules/system-view.js';
import { UdevDatabase } from '../udev/database.js';
import { AncestorCache } from '../uevent/ancestors.js';
import type { Uevent } from '../uevent/event.js';
import { Sysfs } from '../uevent/sysfs.js';
import { driveEvaluation, evaluateSteps, type EvaluationInput, type ImportAnswer } from './evaluate.js';

export interface EvaluationContextOptions {
  sysfsRoot: string;
  devRoot: string;
  /** udev's runtime directory whose database the rules read (and the daemon writes); none when undefined. */
  databaseDir?: string | undefined;
  /** Only read the database (a dry run). */
  readOnly?: boolean;
  /** Default: the machine's /etc/passwd and /etc/group. */
  accounts?: Accounts | undefined;
  /** Where programs named without a path are found (default /usr/lib/udev). */
  programDir?: string | undefined;
}

export class EvaluationContext {
  readonly sysfs: Sysfs;
  readonly ancestors: AncestorCache;
  readonly system: SystemView;
  readonly accounts: Accounts;
  readonly database: UdevDatabase | undefined;
  readonly devRoot: string;
  #programDir: string | undefined;

  constructor(options: EvaluationContextOptions) {
    this.sysfs = new Sysfs(options.sysfsRoot);
    this.ancestors = new AncestorCache(this.sysfs);
    this.system = machineView(options.sysfsRoot, undefined, { cpuidSignature: hypervisorSignature });
    this.accounts = options.accounts ?? loadAccounts();
    this.database = options.databaseDir === undefined ? undefined : new UdevDatabase(options.databaseDir, { sysfs: this.sysfs, readOnly: options.readOnly === true });
    this.devRoot = options.devRoot;
    this.#programDir = options.programDir;
  }

  /**
   * The input of one event's evaluation. `trace: 'matched'` (the daemon) uses the rule index
   * and traces matches only; `'all'` (dry runs) traces every rule with the key that failed.
   */
  input(event: Uevent, trace: 'all' | 'matched'): EvaluationInput {
    return {
      event,
      device: this.sysfs.device(event.devpath, this.ancestors),
      devRoot: this.devRoot,
      system: this.system,
      accounts: this.accounts,
      ...(this.database ? { database: this.database } : {}),
      ...(this.#programDir === undefined ? {} : { programDir: this.#programDir }),
      trace,
    };
  }

  /** The device may be an ancestor of later events: it is read again (and forgotten when gone). */
  forgetDevice(event: Uevent): void {
    const gone = event.action === 'remove' || event.action === 'move';
    this.ancestors.forget(event.devpath, gone);
    if (event.devpathOld !== undefined) this.ancestors.forget(event.devpathOld, true);
  }
}

/** Evaluates `event` against `ruleSet` in this context. */
export function evaluateInContext(ruleSet: RuleSet, context: EvaluationContext, event: Uevent, trace: 'all' | 'matched', answer: ImportAnswer): Evaluation | Promise<Evaluation> {
  return driveEvaluation(evaluateSteps(ruleSet, context.input(event, trace)), answer);
}
