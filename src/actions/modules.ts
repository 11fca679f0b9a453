// Loading kernel modules by alias (a MODALIAS): `modprobe -b -q -- ALIAS`. A storm of
// identical aliases (every port of a hub, every coldplugged device of one kind) runs
// modprobe once: a running load is shared, and a loaded alias is not loaded again.
// Most aliases have no module (a hub's interface, a device driven by a built-in driver):
// modprobe then exits 1, as for a real failure. As udev's kmod builtin, that is no failure:
// when `modprobe -R` resolves the alias to no module, the load is recorded as done, with why.
import type { PlannedModule } from '../rules/plan.js';
import type { ActionResult } from './results.js';
import type { ProgramPool } from './run.js';
import { findProgram } from './system.js';

const MODPROBE_CANDIDATES = ['/sbin/modprobe', '/usr/sbin/modprobe', '/bin/modprobe', '/usr/bin/modprobe'];
// Aliases remembered as loaded; past this many the memory starts over (a reload costs one modprobe).
const MAX_REMEMBERED = 8192;
/** Recorded (as the load's stderr) when the alias names no module: nothing to load, nothing failed. */
export const NO_MODULE = 'no module for this alias (modprobe -R resolves it to none)';

export class ModuleLoader {
  readonly modprobe: string | null;
  #pool: ProgramPool;
  #loaded = new Set<string>();
  #loading = new Map<string, Promise<ActionResult>>();
  /** modprobe runs started (the rest were deduplicated). */
  runs = 0;
  #reportedMissing = false;

  /** `modprobe`: its path, null for none, or undefined to look in the usual places. */
  constructor(pool: ProgramPool, modprobe?: string | null) {
    this.#pool = pool;
    this.modprobe = modprobe === undefined ? findProgram(MODPROBE_CANDIDATES) : modprobe;
  }

  /** One result when modprobe ran for this request; none when the alias was already loaded or loading. */
  async load(module: PlannedModule, env: Record<string, string>): Promise<ActionResult | undefined> {
    if (this.modprobe === null) {
      // Said once: a board without modprobe would otherwise log a failure per alias.
      if (this.#reportedMissing) return undefined;
      this.#reportedMissing = true;
      return { kind: 'module', target: module.alias, rule: module.rule, ok: false, error: 'modprobe not found (reported once; modules are not loaded)', durationMs: 0 };
    }
    if (this.#loaded.has(module.alias)) return undefined;
    const running = this.#loading.get(module.alias);
    if (running) {
      await running;
      return undefined;
    }
    const load = this.#run(module, env);
    this.#loading.set(module.alias, load);
    try {
      const result = await load;
      if (result.ok) {
        if (this.#loaded.size >= MAX_REMEMBERED) this.#loaded.clear();
        this.#loaded.add(module.alias);
      }
      return result;
    } finally {
      this.#loading.delete(module.alias);
    }
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
