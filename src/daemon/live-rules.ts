// The daemon's current rule set and how it changes: SIGHUP, `hotplugd reload` and a
// watch on the rule directories. A new set replaces the old one only if it loaded
// without errors; events are evaluated synchronously, so each sees exactly one set.
// The watch waits for the directories to be quiet, and does not take a file that had
// rules and is now empty: editors truncate and then write, and an empty file caught in
// between must not replace working rules (an explicit reload still takes it).
import { existsSync, readFileSync, watch, type FSWatcher } from 'node:fs';
import type { Logger } from '../log.js';
import type { Accounts } from '../os/accounts.js';
import { loadRules, type LoadResult } from '../frontends/load.js';
import { openRuleCache } from '../frontends/rules-cache.js';
import { formatDiagnostic, type Diagnostic } from '../rules/model.js';
import { RuleSet } from '../rules/ruleset.js';

/** The watch reloads once the directories have had no change for this long. */
const WATCH_SETTLE_MS = 500;

/** True when the file exists and holds nothing but whitespace. */
function isEmptyNow(path: string): boolean {
  try {
    return readFileSync(path, 'utf8').trim() === '';
  } catch {
    return false; // gone (a deletion is meant) or unreadable (the load reports it)
  }
}

export interface ReloadOutcome {
  replaced: boolean;
  rules: number;
  files: number;
  version: number;
  diagnostics: Diagnostic[];
}

export class LiveRules {
  current: RuleSet = new RuleSet([]);
  /** Counts sets that were put in place, the first one included. */
  version = 0;
  failedReloads = 0;
  /** Watch reloads not done because a file with rules had become empty. */
  heldBack = 0;
  /** Errors and warnings of the most recent load, kept or not. */
  lastDiagnostics: Diagnostic[] = [];
  #dirs: readonly string[];
  #log: Logger;
  #accounts: Accounts | undefined;
  #cacheDir: string | undefined;
  #watchers: FSWatcher[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(dirs: readonly string[], log: Logger, accounts?: Accounts, cacheDir?: string) {
    this.#dirs = dirs;
    this.#log = log;
    this.#accounts = accounts;
    this.#cacheDir = cacheDir;
  }

  /** The first load: the rules that loaded are used even if others had errors (returned to the caller). */
  loadInitial(): ReloadOutcome {
    const result = this.#load();
    this.#install(result);
    this.#logDiagnostics(result.diagnostics);
    const steppedAside = result.ruleSet.files.filter((f) => f.steppedAside).map((f) => f.path);
    if (steppedAside.length > 0) this.#log.info({ steppedAside }, "Rule files step aside: udev's own rules compute the same");
    return this.#outcome(result, true);
  }

  /** Loads the directories again; keeps the current set when the new one has errors. */
  reload(reason: string): ReloadOutcome {
    const started = performance.now();
    const result = this.#load();
    this.#logDiagnostics(result.diagnostics);
    const ms = Math.round(performance.now() - started);
    if (!result.ok) {
      this.failedReloads++;
      const errors = result.diagnostics.filter((d) => d.severity === 'error').length;
      this.#log.error({ reason, errors, version: this.version }, `Failed to reload rules: ${errors} errors; keeping the previous rules`);
      return this.#outcome(result, false);
    }
    this.#install(result);
    this.#log.info({ reason, rules: result.ruleSet.rules.length, files: result.ruleSet.files.length, version: this.version, ms }, 'Rules reloaded');
    return this.#outcome(result, true);
  }

  /** Reloads shortly after a rule directory changes (editors write several times). */
  watch(): void {
    for (const dir of this.#dirs) {
      if (!existsSync(dir)) continue;
      try {
        const watcher = watch(dir, () => this.#scheduleReload());
        watcher.on('error', (error) => this.#log.warn({ dir, err: error }, `Failed to watch rules directory ${dir}: ${error.message}`));
        this.#watchers.push(watcher);
      } catch (error) {
        this.#log.warn({ dir, err: error }, `Failed to watch rules directory ${dir}: ${(error as Error).message}`);
      }
    }
  }

  close(): void {
    clearTimeout(this.#timer);
    for (const watcher of this.#watchers) watcher.close();
    this.#watchers = [];
  }

  #scheduleReload(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#reloadFromWatch(), WATCH_SETTLE_MS);
  }

  #reloadFromWatch(): void {
    const emptied = this.current.files.filter((f) => !f.masked && f.rules > 0 && isEmptyNow(f.path));
    if (emptied.length > 0) {
      this.heldBack++;
      for (const file of emptied) {
        this.#log.warn(
          { file: file.path, rules: file.rules, version: this.version },
          `${file.path} had ${file.rules} rules and is empty now (caught mid-write?): keeping the rules in use until it has content again or 'hotplugd reload' is run`,
        );
      }
      return;
    }
    this.reload('watch');
  }

  #load(): LoadResult {
    // A new cache object per load: what it read is not held between loads.
    const result = loadRules(this.#dirs, {
      ...(this.#accounts ? { accounts: this.#accounts } : {}),
      ...(this.#cacheDir === undefined ? {} : { cache: openRuleCache(this.#cacheDir) }),
    });
    // A read-only cache directory is normal on some boards: the rules load all the same.
    if (result.cacheError !== undefined) this.#log.debug({ error: result.cacheError }, 'Rule cache not written');
    return result;
  }

  #install(result: LoadResult): void {
    this.current = result.ruleSet;
    this.version++;
  }

  #logDiagnostics(diagnostics: Diagnostic[]): void {
    this.lastDiagnostics = diagnostics;
    for (const d of diagnostics) {
      const fields = { file: d.at.file, line: d.at.line, column: d.at.column };
      if (d.severity === 'error') this.#log.error(fields, formatDiagnostic(d));
      else this.#log.warn(fields, formatDiagnostic(d));
    }
  }

  #outcome(result: LoadResult, replaced: boolean): ReloadOutcome {
    return {
      replaced,
      rules: result.ruleSet.rules.length,
      files: result.ruleSet.files.length,
      version: this.version,
      diagnostics: result.diagnostics,
    };
  }
}

