// Warnings about rules that load but are probably wrong: rules that can never match,
// duplicate names, files hidden by an override. Errors come from loading itself.
import { basename } from 'node:path';
import { KERNEL_ACTIONS, LINK_ACTIONS } from '../uevent/event.js';
import type { Condition, Diagnostic, Rule } from '../rules/model.js';
import type { RuleSet } from '../rules/ruleset.js';

function warning(at: Diagnostic['at'], message: string, hint?: string): Diagnostic {
  return { severity: 'warning', at, message, ...(hint ? { hint } : {}) };
}

/** Why a condition can never be true, or undefined. */
function neverMatches(condition: Condition): string | undefined {
  if (condition.kind !== 'field') return undefined;
  const { field, matcher } = condition;
  const positives = matcher.positives;
  if (positives.length === 0) return undefined;
  const actions: readonly string[] = [...KERNEL_ACTIONS, ...LINK_ACTIONS];
  if (field === 'action' && matcher.exactValues?.every((a) => !actions.includes(a))) {
    return `no event has the action ${matcher.source} (the kernel sends ${KERNEL_ACTIONS.join(', ')}; network links give ${LINK_ACTIONS.join(', ')})`;
  }
  if (field === 'devpath' && positives.every((p) => !p.startsWith('/') && !p.startsWith('*'))) {
    return `devpaths always start with "/devices/" (${matcher.source})`;
  }
  return undefined;
}

export function lintRuleSet(ruleSet: RuleSet): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  const seen = new Map<string, Rule>();
  for (const rule of ruleSet.rules) {
    for (const condition of rule.conditions) {
      const reason = neverMatches(condition);
      if (reason) diagnostics.push(warning(condition.at, `rule "${rule.name}" can never match: ${reason}`));
    }
    const earlier = seen.get(rule.name);
    if (earlier) {
      diagnostics.push(warning(rule.at, `duplicate rule name "${rule.name}" (also at ${earlier.at.file}:${earlier.at.line})`, 'names identify rules in traces and the history'));
    } else seen.set(rule.name, rule);
    if (rule.stop && rule.conditions.length === 0) {
      diagnostics.push(warning(rule.at, `rule "${rule.name}" matches every event and stops: no later rule ever applies`));
    }
  }
  for (const file of ruleSet.files) {
    for (const hidden of file.overrides) {
      diagnostics.push(
        warning({ file: hidden, line: 1, column: 1 }, `not used: overridden by ${file.path}`, `a file named ${basename(hidden)} in a higher-priority directory replaces it`),
      );
    }
  }
  return diagnostics;
}
