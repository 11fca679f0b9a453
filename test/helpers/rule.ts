// A rule as a loaded rule set holds it, from the label history shows (`name (file:line:column)`):
// the daemon passes rules, not their labels, to the history, metrics and subscribers.
import type { Rule } from '../../src/rules/model.js';

export function ruleFromLabel(label: string, text?: string): Rule {
  const match = /^(.*) \((.*):(\d+):(\d+)\)$/.exec(label);
  if (!match) throw new Error(`not a rule label: ${label}`);
  const [, name, file, line, column] = match;
  return { name: name!, at: { file: file!, line: Number(line), column: Number(column) }, ...(text === undefined ? {} : { text }), conditions: [], assignments: [], stop: false, actions: undefined, subsystems: undefined };
}
