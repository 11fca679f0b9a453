// Loading kernel modules by alias (a MODALIAS): in process as udevd's kmod builtin does
// (os/kmod-loader.ts: finit_module), else `modprobe -b -q -- ALIAS`. A storm of
// identical aliases (every port of a hub, every coldplugged device of one kind) runs
// modprobe once: a running load is shared, and a loaded alias is not loaded again.
// Most aliases have no module (a hub's interface, a device driven by a built-in driver):
// modprobe then exits 1, as for a real failure. As udev's kmod builtin, that is no failure:
// when `modprobe -R` resolves the alias to no module, the load is recorded as done, with why.
import { constants, release } from 'node:os';
import { getSystemErrorName } from 'node:util';
import { KernelModuleLoader } from '../os/kmod-loader.js';
import { KernelModules, type ModuleIndex } from '../os/module-index.js';
import { nativeAddon } from '../os/native.js';
import type { PlannedModule } from '../rules/plan.js';
import type { ActionResult } from './results.js';
import type { ProgramPool } from './run.js';
import { findProgram } from './system.js';

const MODPROBE_CANDIDATES = ['/sbin/modprobe', '/usr/sbin/modprobe', '/bin/modprobe', '/usr/bin/modprobe'];
// Aliases remembered as loaded; past this many the memory starts over (a reload costs one modprobe).
const MAX_REMEMBERED = 8192;
/** Recorded (as the load's stderr) when the alias names no module: nothing to load, nothing failed. */
export const NO_MODULE = 'no module for this alias: nothing to load';

export class ModuleLoader {
  readonly modprobe: string | null;
  #pool: ProgramPool;
  #loaded = new Set<string>();
  #loading = new Map<string, Promise<ActionResult>>();
  /** modprobe runs started (the rest were deduplicated). */
  runs = 0;
  #reportedMissing = false;

  /** Aliases answered from the module index, without a modprobe run. */
  answered = 0;
  /** Loads done in process (finit_module), without a modprobe run. */
  inserted = 0;
  #index: () => ModuleIndex | undefined;
  #kernel: KernelModuleLoader | undefined;

  /**
   * `modprobe`: its path, null for none, or undefined to look in the usual places. `index`:
   * which modules an alias names (undefined: the running kernel's; null: none, every alias
   * goes to modprobe). `kernel`: loads modules in process (default: for the running kernel's
   * index, with the addon's finit_module); modprobe still loads what it cannot.
   */
  constructor(pool: ProgramPool, modprobe?: string | null, index?: ModuleIndex | null, kernel?: KernelModuleLoader | null) {
    this.#pool = pool;
    this.modprobe = modprobe === undefined ? findProgram(MODPROBE_CANDIDATES) : modprobe;
    if (index === undefined) {
      const modules = new KernelModules();
      this.#index = () => modules.current();
      kernel ??= new KernelModuleLoader({ dir: `/lib/modules/${release()}`, insert: (path, params, flags) => nativeAddon().insertModule(path, params, flags) });
    } else this.#index = () => index ?? undefined;
    this.#kernel = kernel ?? undefined;
  }

  /** One result when modprobe ran for this request; none when the alias was already loaded or loading. */
  async load(module: PlannedModule, env: Record<string, string>): Promise<ActionResult | undefined> {
    if (this.modprobe === null && this.#kernel === undefined) return this.#noModprobe(module);
    if (this.#loaded.has(module.alias)) return undefined;
    // As udevd's kmod builtin, in process: no module for the alias, or all loaded already.
    const started = performance.now();
    const index = this.#index();
    const verdict = index?.verdict(module.alias);
    if (verdict !== undefined && verdict.kind !== 'load') {
      this.answered++;
      this.#remember(module.alias);
      if (verdict.kind === 'present') return undefined;
      return { kind: 'module', target: module.alias, rule: module.rule, ok: true, error: null, durationMs: performance.now() - started, stderr: NO_MODULE };
    }
    const running = this.#loading.get(module.alias);
    if (running) {
      await running;
      return undefined;
    }
    const inProcess = index !== undefined && verdict?.kind === 'load' ? this.#inProcess(module, verdict.modules, index, started) : undefined;
    if (inProcess === undefined && this.modprobe === null) return this.#noModprobe(module);
    const load = inProcess ?? this.#run(module, env);
    this.#loading.set(module.alias, load);
    try {
      const result = await load;
      if (result.ok) this.#remember(module.alias);
      return result;
    } finally {
      this.#loading.delete(module.alias);
    }
  }

  #noModprobe(module: PlannedModule): ActionResult | undefined {
    // Said once: a board without modprobe would otherwise log a failure per alias.
    if (this.#reportedMissing) return undefined;
    this.#reportedMissing = true;
    return { kind: 'module', target: module.alias, rule: module.rule, ok: false, error: 'modprobe not found (reported once; modules are not loaded)', durationMs: 0 };
  }

  #remember(alias: string): void {
    if (this.#loaded.size >= MAX_REMEMBERED) this.#loaded.clear();
    this.#loaded.add(alias);
  }

  // As udevd's kmod builtin: a module that finds no device (ENODEV) or no file (ENOENT) is
  // no failure (kmod logs it at debug level); other errors are.
  #inProcess(module: PlannedModule, modules: string[], index: ModuleIndex, started: number): Promise<ActionResult> | undefined {
    if (this.#kernel === undefined) return undefined;
    const kernel = this.#kernel;
    const plan = kernel.plan(modules, index);
    if (plan.kind !== 'insert') return undefined;
    this.inserted++;
    const base = { kind: 'module' as const, target: module.alias, rule: module.rule };
    const failure = (error: unknown): ActionResult => ({ ...base, ok: false, error: `insert: ${(error as Error).message}`, durationMs: performance.now() - started });
    return kernel.insert(plan.steps).then(({ inserted, failed }) => {
      const said = [inserted.length > 0 ? `inserted ${inserted.join(' ')}` : '', plan.blacklisted.length > 0 ? `blacklisted ${plan.blacklisted.join(' ')}` : ''].filter(Boolean).join('; ');
      const done = { ...base, durationMs: performance.now() - started, stdout: said };
      if (failed === undefined) return { ...done, ok: true, error: null };
      const code = getSystemErrorName(-failed.errno);
      if (failed.errno === constants.errno.ENODEV || failed.errno === constants.errno.ENOENT) return { ...done, ok: true, error: null, stderr: `${failed.module}: ${code} (as udevd's kmod: not a failure)` };
      return { ...done, ok: false, error: `${failed.module}: ${code}` };
    }, failure);
  }

  async #run(module: PlannedModule, env: Record<string, string>): Promise<ActionResult> {
    const modprobe = this.modprobe as string;
    this.runs++;
    const result = await this.#pool.run([modprobe, '-b', '-q', '--', module.alias], { env, rule: module.rule });
    if (result.exitCode === 1 && !result.timedOut) {
      const resolved = await this.#pool.run([modprobe, '-q', '-R', '--', module.alias], { env, rule: module.rule });
      if (resolved.exitCode !== 0 && !resolved.timedOut && (resolved.stdout ?? '').trim() === '') {
        return { ...result, kind: 'module', target: module.alias, ok: true, error: null, stderr: NO_MODULE };
      }
    }
    return { ...result, kind: 'module', target: module.alias };
  }
}
