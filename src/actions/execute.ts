// Carrying out a plan. Device steps (node, links, attributes) are quick file operations
// done in event order; programs run afterwards, one after another for the event and
// concurrently with other events' programs (bounded by the pool), so intake never waits.
// Every step is its own result; a failed step never stops the others.
import { mkdirSync } from 'node:fs';
import { programEnvironment, type Plan } from '../rules/plan.js';
import type { Uevent } from '../uevent/event.js';
import type { Sysfs } from '../uevent/sysfs.js';
import { applyAttributes, applyAuthorization } from './attrs.js';
import { applyDevnumLink, applyDeviceNode } from './devnode.js';
import { LinkTable } from './links.js';
import type { ActionResult } from './results.js';
import { JobSupervisor } from './jobs.js';
import { ModuleLoader } from './modules.js';
import { UnitStarter } from './units.js';
import { applyInterface, interfaceWanted } from './interface.js';
import { DEFAULT_PROGRAM_TIMEOUT_MS, ProgramPool } from './run.js';

export interface ExecutorOptions {
  devRoot: string;
  sysfs: Sysfs;
  pool?: ProgramPool;
  /** The modprobe program (default: found in /sbin, /usr/sbin, ...). */
  modprobe?: string;
  /** For programs whose rule sets no timeout (default 30 s). */
  programTimeoutMs?: number;
}

export class ActionExecutor {
  readonly links: LinkTable;
  readonly pool: ProgramPool;
  readonly modules: ModuleLoader;
  readonly jobs = new JobSupervisor();
  readonly units: UnitStarter;
  #devRoot: string;
  #sysfs: Sysfs;
  readonly programTimeoutMs: number;

  constructor(options: ExecutorOptions) {
    this.#devRoot = options.devRoot;
    this.#sysfs = options.sysfs;
    this.links = new LinkTable(options.devRoot);
    this.pool = options.pool ?? new ProgramPool();
    this.modules = new ModuleLoader(this.pool, options.modprobe);
    this.units = new UnitStarter(this.pool);
    this.programTimeoutMs = options.programTimeoutMs ?? DEFAULT_PROGRAM_TIMEOUT_MS;
  }

  /** Creates the dev root when it does not exist (a test root, or a board without devtmpfs). */
  prepare(): void {
    mkdirSync(this.#devRoot, { recursive: true, mode: 0o755 });
  }

  /** Node, links and attributes for one event. */
  applyDevice(event: Uevent, plan: Plan): ActionResult[] {
    const results: ActionResult[] = [];
    if (event.action === 'remove') {
      results.push(...this.links.remove(event.devpath));
      const devnum = applyDevnumLink(this.#devRoot, event, plan);
      if (devnum) results.push(devnum);
      return results;
    }
    const node = applyDeviceNode(this.#devRoot, event, plan, () => this.#sysfs.exists(event.devpath));
    if (node) results.push(node);
    const devnum = applyDevnumLink(this.#devRoot, event, plan);
    if (devnum) results.push(devnum);
    if (plan.devnode !== null) results.push(...this.links.update(event.devpath, plan.devnode, plan.symlinks, plan.linkPriority));
    results.push(...applyAttributes(this.#sysfs, event.devpath, plan.attrs));
    if (plan.authorize !== null) results.push(applyAuthorization(this.#sysfs, event.devpath, plan.authorize));
    return results;
  }

  /** True when runPrograms() has something to run: the event then finishes asynchronously. */
  hasPrograms(event: Uevent, plan: Plan): boolean {
    return plan.run.length > 0 || plan.modules.length > 0 || interfaceWanted(event, plan);
  }

  /**
   * The interface's settings and rename, the plan's modules, then its programs, in order; one result each
   * that ran. No program runs past `deadline` (the event's time budget, epoch ms).
   */
  async runPrograms(event: Uevent, plan: Plan, deadline = Infinity): Promise<ActionResult[]> {
    const results: ActionResult[] = [];
    results.push(...(await applyInterface(this.pool, event, plan)));
    for (const module of plan.modules) {
      const result = await this.modules.load(module, plan.properties);
      if (result) results.push(result);
    }
    for (const program of plan.run) {
      const env = programEnvironment(plan.properties, plan.devnode, program.devnameAsNode);
      results.push(await this.runProgram(program.argv, env, program.timeoutMs, program.rule, deadline));
    }
    return results;
  }

  /**
   * Runs one program within its event's time budget: its own timeout (or the default),
   * cut to what is left before `deadline`; one that cannot start in time is not started.
   * The one place a program's time is decided (import programs and RUN alike).
   */
  runProgram(argv: string[], env: Record<string, string>, timeoutMs: number | undefined, rule: string, deadline: number): Promise<ActionResult> {
    const budget = Math.min(timeoutMs ?? this.programTimeoutMs, deadline - Date.now());
    if (budget <= 0) {
      return Promise.resolve({ kind: 'program', target: argv[0] ?? '', rule, ok: false, error: 'not run: the event used up its time budget', durationMs: 0, argv, timedOut: true });
    }
    return this.pool.run(argv, { env, timeoutMs: budget, rule });
  }
}
