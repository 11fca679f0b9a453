// A loaded, immutable set of rules with an index by action and subsystem, so an event
// meets only the rules that can match it, in file order.
import type { Rule } from './model.js';

/** One rule file that takes part in the set (after directory overrides). */
export interface RuleFile {
  path: string;
  /** Files with the same name in lower-priority directories that this one overrides. */
  overrides: string[];
  /** Masked: an empty file or a link to /dev/null that hides lower files of that name. */
  masked: boolean;
  rules: number;
}

// Pairs of (action, subsystem) are few (the kernel's actions × this machine's
// subsystems); the cap only guards against something unexpected.
const MAX_INDEX_ENTRIES = 4096;

export class RuleSet {
  readonly rules: readonly Rule[];
  readonly files: readonly RuleFile[];
  readonly loadedAt: number;
  #index = new Map<string, readonly Rule[]>();

  constructor(rules: readonly Rule[], files: readonly RuleFile[] = [], loadedAt = Date.now()) {
    this.rules = rules;
    this.files = files;
    this.loadedAt = loadedAt;
  }

  /** The rules that can match an event with this action and subsystem, in order. */
  candidates(action: string, subsystem: string): readonly Rule[] {
    const key = `${action}\0${subsystem}`;
    let rules = this.#index.get(key);
    if (rules === undefined) {
      rules = this.rules.filter(
        (rule) => (rule.actions === undefined || rule.actions.has(action)) && (rule.subsystems === undefined || rule.subsystems.has(subsystem)),
      );
      if (this.#index.size >= MAX_INDEX_ENTRIES) this.#index.clear();
      this.#index.set(key, rules);
    }
    return rules;
  }
}
